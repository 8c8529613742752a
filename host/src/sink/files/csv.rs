//! CSV export: a header row of the stream's columns, then one row per record; nested
//! values are written as JSON text.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::Value;

use crate::sink::schema::{Cell, Column, cell};

/// Appends records to a `.csv` file.
pub struct CsvWriter {
    out: csv::Writer<File>,
    columns: Vec<Column>,
}

impl CsvWriter {
    /// Writes to `file` from its current position, starting with a header row when
    /// `write_header` is set.
    pub fn new(file: File, columns: Vec<Column>, write_header: bool) -> csv::Result<Self> {
        let mut out = csv::WriterBuilder::new().buffer_capacity(1 << 16).from_writer(file);
        if write_header {
            out.write_record(columns.iter().map(|c| c.name.as_str()))?;
        }
        Ok(CsvWriter { out, columns })
    }

    /// The header row of an existing CSV file, if it has one.
    pub fn existing_header(path: &Path) -> std::io::Result<Option<Vec<String>>> {
        let Ok(file) = File::open(path) else { return Ok(None) };
        let mut first = String::new();
        BufReader::new(file).read_line(&mut first)?;
        if first.is_empty() {
            return Ok(None);
        }
        let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(first.as_bytes());
        Ok(reader.records().next().and_then(|r| r.ok()).map(|r| r.iter().map(str::to_string).collect()))
    }

    /// Writes one record row; a value of the wrong type is an error naming the field.
    pub fn write(&mut self, record: &Value) -> Result<(), String> {
        let mut row: Vec<String> = Vec::with_capacity(self.columns.len());
        for col in &self.columns {
            let text =
                match cell(col.ty, record.get(&col.name)).map_err(|r| format!("field {}: {r}", col.name))? {
                    Cell::Null => String::new(),
                    Cell::Int(i) => i.to_string(),
                    Cell::Real(f) => f.to_string(),
                    Cell::Bool(b) => b.to_string(),
                    Cell::Text(s) => s.to_string(),
                    Cell::Json(s) | Cell::Owned(s) => s,
                };
            row.push(text);
        }
        self.out.write_record(&row).map_err(|e| e.to_string())
    }

    /// Hands buffered rows to the OS and returns the file they went to.
    pub fn flush(&mut self) -> std::io::Result<&File> {
        self.out.flush()?;
        Ok(self.out.get_ref())
    }
}

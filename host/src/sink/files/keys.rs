//! Primary keys in append-only files, so an incremental stream's file holds each key
//! once, as a table would.
//!
//! A JSON Lines or CSV file cannot update a row in place. When an incremental read sends
//! a key the file already holds (Qlik's consumption look-back reads the last 48 hours
//! again; a SCIM user changed), the record is appended and the file is then compacted:
//! rewritten keeping only the last record of each key. Keys are kept as 128-bit hashes
//! ([`SeenKeys`]), about 32 bytes each, and compaction runs only when a key repeated.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};

use std::path::Path;

use serde_json::Value;

use super::format::Format;
use crate::sink::schema::{SeenKeys, StreamPlan, key_text, key_values};

/// The keys of one incremental stream's file, and what this run added to them.
#[derive(Debug, Default)]
pub struct FileKeys {
    seen: SeenKeys,
    /// Records of this run whose key was new.
    pub new: u64,
    /// Records of this run whose key the file already held.
    pub repeated: u64,
}

/// One record of a stream file as it is stored: a JSON line, or a CSV row.
enum Stored {
    Line(String),
    Row(csv::ByteRecord),
}

/// Where [`compact`] writes the records it keeps.
enum Compacted {
    Lines(BufWriter<File>),
    Rows(Box<csv::Writer<BufWriter<File>>>),
}

/// Calls `each` with the canonical key text and the stored form of every record in the
/// file at `path`, in file order, one at a time (a missing file has none).
fn scan(
    path: &Path,
    format: Format,
    plan: &StreamPlan,
    mut each: impl FnMut(String, Stored) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    match format {
        Format::Jsonl => {
            for line in BufReader::new(file).lines() {
                let line = line?;
                let record: Value = serde_json::from_str(&line).map_err(std::io::Error::other)?;
                each(key_text(&key_values(plan, &record)), Stored::Line(line))?;
            }
            Ok(())
        }
        Format::Csv => {
            let mut reader = csv::Reader::from_reader(file);
            let headers = reader.byte_headers().map_err(std::io::Error::other)?.clone();
            let columns: Vec<Option<usize>> =
                plan.primary_key.iter().map(|k| headers.iter().position(|h| h == k.as_bytes())).collect();
            for row in reader.byte_records() {
                let row = row.map_err(std::io::Error::other)?;
                let values: Vec<Value> = columns
                    .iter()
                    .map(|c| {
                        let cell = c.and_then(|c| row.get(c)).unwrap_or_default();
                        Value::String(String::from_utf8_lossy(cell).into_owned())
                    })
                    .collect();
                each(key_text(&values.iter().collect::<Vec<_>>()), Stored::Row(row))?;
            }
            Ok(())
        }
    }
}

impl FileKeys {
    /// The keys the file at `path` holds (none when it does not exist).
    pub fn read(path: &Path, format: Format, plan: &StreamPlan) -> std::io::Result<Self> {
        let mut keys = FileKeys::default();
        scan(path, format, plan, |key, _| {
            keys.seen.insert(&key);
            Ok(())
        })?;
        Ok(keys)
    }

    /// Counts `record`'s key as new or repeated.
    pub fn add(&mut self, plan: &StreamPlan, record: &Value) {
        if self.seen.insert(&key_text(&key_values(plan, record))) {
            self.new += 1;
        } else {
            self.repeated += 1;
        }
    }
}

/// Rewrites the file at `path` keeping only the last record of each key (the CSV
/// header stays), through a temporary file renamed over it; returns its new length.
/// Two passes over the file, holding one hash and position per key.
pub fn compact(path: &Path, format: Format, plan: &StreamPlan) -> std::io::Result<u64> {
    let mut hashes = SeenKeys::default();
    let mut last: HashMap<(u64, u64), usize> = HashMap::new();
    let mut index = 0;
    scan(path, format, plan, |key, _| {
        last.insert(hashes.hash(&key), index);
        index += 1;
        Ok(())
    })?;
    let tmp = path.with_extension("compacting");
    let out = BufWriter::new(File::create(&tmp)?);
    let mut out = match format {
        Format::Jsonl => Compacted::Lines(out),
        Format::Csv => {
            let mut rows = csv::Writer::from_writer(out);
            let header = csv::Reader::from_path(path).and_then(|mut r| r.byte_headers().cloned());
            rows.write_byte_record(&header.map_err(std::io::Error::other)?)?;
            Compacted::Rows(Box::new(rows))
        }
    };
    let mut index = 0;
    scan(path, format, plan, |key, stored| {
        let keep = last.get(&hashes.hash(&key)) == Some(&index);
        index += 1;
        match (&mut out, stored) {
            (Compacted::Lines(out), Stored::Line(line)) if keep => {
                out.write_all(line.as_bytes())?;
                out.write_all(b"\n")
            }
            (Compacted::Rows(out), Stored::Row(row)) if keep => {
                out.write_byte_record(&row).map_err(std::io::Error::other)
            }
            _ => Ok(()),
        }
    })?;
    let file = match out {
        Compacted::Lines(out) => out.into_inner().map_err(|e| e.into_error())?,
        Compacted::Rows(out) => out
            .into_inner()
            .map_err(|e| std::io::Error::other(e.to_string()))?
            .into_inner()
            .map_err(|e| e.into_error())?,
    };
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(std::fs::metadata(path)?.len())
}

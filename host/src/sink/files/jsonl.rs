//! JSON Lines export: one record object per line, exactly as the connector sent it.

use std::fs::File;
use std::io::{BufWriter, Write};

use serde_json::Value;

/// Appends records to a `.jsonl` file.
pub struct JsonlWriter {
    out: BufWriter<File>,
}

impl JsonlWriter {
    /// Writes to `file` from its current position.
    pub fn new(file: File) -> Self {
        JsonlWriter { out: BufWriter::with_capacity(1 << 16, file) }
    }

    /// Writes one record line.
    pub fn write(&mut self, record: &Value) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, record)?;
        self.out.write_all(b"\n")
    }

    /// Hands buffered lines to the OS and returns the file they went to.
    pub fn flush(&mut self) -> std::io::Result<&File> {
        self.out.flush()?;
        Ok(self.out.get_ref())
    }
}

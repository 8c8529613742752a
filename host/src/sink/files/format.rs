//! The file formats of a folder destination, apart from the destination so the modules
//! that read and write its files ([`super::keys`]) need not import the destination.

/// The file format of a folder destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON Lines.
    Jsonl,
    /// CSV with a header row.
    Csv,
}

impl Format {
    /// The extension of a stream's file, and the scheme that names the format.
    pub fn ext(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
        }
    }
}

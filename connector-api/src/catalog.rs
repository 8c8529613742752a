//! What a connector can read ([`Catalog`]) and what a caller chose to read
//! ([`ConfiguredCatalog`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Error, ErrorKind, Result};

/// How a stream is synchronised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// Every run reads the whole stream; the destination replaces its snapshot.
    FullRefresh,
    /// Each run reads what changed since the last checkpoint; the destination upserts
    /// by primary key.
    Incremental,
}

impl SyncMode {
    /// `full_refresh` or `incremental`.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::FullRefresh => "full_refresh",
            SyncMode::Incremental => "incremental",
        }
    }
}

/// One stream a connector can read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamDescriptor {
    /// snake_case stream name; destinations name tables after it.
    pub name: String,
    /// What one record is, for generated docs.
    pub description: String,
    /// JSON Schema (draft 2020-12) of one record. Each property's `type` drives the
    /// destination column type; `description` documents the column.
    pub json_schema: Value,
    /// Top-level properties that identify a record.
    pub primary_key: Vec<String>,
    /// The property incremental reads resume from, if the stream supports them.
    pub cursor_field: Option<String>,
    /// Modes this stream supports, the preferred one first.
    pub supported_sync_modes: Vec<SyncMode>,
}

impl StreamDescriptor {
    /// The mode used when the caller does not force full refresh: the first supported.
    pub fn default_sync_mode(&self) -> SyncMode {
        self.supported_sync_modes.first().copied().unwrap_or(SyncMode::FullRefresh)
    }
}

/// Every stream a connector can read with a given configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    /// Streams, in the order the connector reads them.
    pub streams: Vec<StreamDescriptor>,
}

impl Catalog {
    /// Finds a stream by name.
    pub fn stream(&self, name: &str) -> Option<&StreamDescriptor> {
        self.streams.iter().find(|s| s.name == name)
    }

    /// Selects streams to read.
    ///
    /// `selection` of `None` selects every stream. Each stream reads in its default
    /// mode, or in full refresh when `full_refresh` is set. An unknown name is a
    /// [`ErrorKind::Config`] error that lists the known names.
    pub fn configure(&self, selection: Option<&[String]>, full_refresh: bool) -> Result<ConfiguredCatalog> {
        let chosen: Vec<&StreamDescriptor> = match selection {
            None => self.streams.iter().collect(),
            Some(names) => names
                .iter()
                .map(|name| {
                    self.stream(name).ok_or_else(|| {
                        let known: Vec<&str> = self.streams.iter().map(|s| s.name.as_str()).collect();
                        Error::new(ErrorKind::Config, format!("unknown stream `{name}`"))
                            .with_context("field", "streams")
                            .with_hint(format!("Known streams: {}", known.join(", ")))
                    })
                })
                .collect::<Result<_>>()?,
        };
        Ok(ConfiguredCatalog {
            streams: chosen
                .into_iter()
                .map(|s| ConfiguredStream {
                    sync_mode: if full_refresh { SyncMode::FullRefresh } else { s.default_sync_mode() },
                    stream: s.clone(),
                })
                .collect(),
        })
    }
}

/// A stream chosen for a read, with the mode to read it in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfiguredStream {
    /// The stream as discovered.
    pub stream: StreamDescriptor,
    /// How to read it this time.
    pub sync_mode: SyncMode,
}

/// The streams a caller asked a connector to read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfiguredCatalog {
    /// Selected streams.
    pub streams: Vec<ConfiguredStream>,
}

impl ConfiguredCatalog {
    /// The configured stream called `name`, if it was selected.
    pub fn stream(&self, name: &str) -> Option<&ConfiguredStream> {
        self.streams.iter().find(|s| s.stream.name == name)
    }

    /// Whether `name` was selected.
    pub fn is_selected(&self, name: &str) -> bool {
        self.stream(name).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn catalog() -> Catalog {
        let stream = |name: &str, modes: Vec<SyncMode>| StreamDescriptor {
            name: name.into(),
            description: String::new(),
            json_schema: json!({"type": "object"}),
            primary_key: vec!["id".into()],
            cursor_field: None,
            supported_sync_modes: modes,
        };
        Catalog {
            streams: vec![
                stream("users", vec![SyncMode::FullRefresh]),
                stream("events", vec![SyncMode::Incremental, SyncMode::FullRefresh]),
            ],
        }
    }

    #[test]
    fn configure_uses_default_mode_unless_forced() {
        let c = catalog().configure(None, false).unwrap();
        assert_eq!(c.stream("events").unwrap().sync_mode, SyncMode::Incremental);
        let c = catalog().configure(None, true).unwrap();
        assert_eq!(c.stream("events").unwrap().sync_mode, SyncMode::FullRefresh);
    }

    #[test]
    fn unknown_stream_lists_known_ones() {
        let err = catalog().configure(Some(&["nope".into()]), false).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert_eq!(err.hint(), Some("Known streams: users, events"));
    }
}

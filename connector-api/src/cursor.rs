//! The cursor of an incremental stream: the latest timestamp delivered, kept as the source
//! wrote it (so a checkpoint never changes its text) and parsed (so it can be compared and
//! moved back by a look-back).
//!
//! A checkpoint is `{"<cursor column>": "<RFC 3339 timestamp>"}`; the read engine writes
//! and reads it, so every incremental stream of every connector saves the same shape.

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A cursor value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The instant.
    pub at: OffsetDateTime,
    raw: String,
}

impl Cursor {
    /// Reads `field` of a checkpoint emitted by an earlier run; `None` if it has no usable
    /// cursor.
    pub fn from_state(value: &Value, field: &str) -> Option<Cursor> {
        Cursor::parse(value.get(field)?.as_str()?)
    }

    /// Parses an RFC 3339 timestamp.
    pub fn parse(raw: &str) -> Option<Cursor> {
        OffsetDateTime::parse(raw, &Rfc3339).ok().map(|at| Cursor { at, raw: raw.to_string() })
    }

    /// The cursor of instant `at`.
    pub fn at(at: OffsetDateTime) -> Cursor {
        let raw = at.format(&Rfc3339).unwrap_or_else(|_| at.unix_timestamp().to_string());
        Cursor { at, raw }
    }

    /// The timestamp as text.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The checkpoint value, `{field: timestamp}`.
    pub fn to_state(&self, field: &str) -> Value {
        json!({ field: self.raw })
    }

    /// Keeps the later of `latest` and `other`.
    pub fn advance(latest: &mut Option<Cursor>, other: Cursor) {
        if latest.as_ref().is_none_or(|l| other.at > l.at) {
            *latest = Some(other);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_only_advances() {
        let c = Cursor::parse("2026-02-03T04:05:06.789Z").unwrap();
        assert_eq!(Cursor::from_state(&c.to_state("end_time"), "end_time"), Some(c.clone()));
        assert_eq!(Cursor::from_state(&json!({"end_time": "yesterday"}), "end_time"), None);
        let mut latest = Some(c.clone());
        Cursor::advance(&mut latest, Cursor::parse("2026-01-01T00:00:00Z").unwrap());
        assert_eq!(latest, Some(c));
    }
}

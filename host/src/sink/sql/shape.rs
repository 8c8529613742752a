//! Whether a table `_tables` lists is still the table connector-host made.
//!
//! `_tables` says a name is ours, not that the object behind it still is: an operator
//! may have dropped the table and put a view, a foreign table or a table of their own
//! under its name. Changing such an object (adding our columns, deleting an instance's
//! rows) would alter something that is not ours and then fail on a missing column
//! half-way, so a run checks what the object is before it changes anything, and stops.

use connector_api::{Error, ErrorKind, Result};

use super::{Store, Table};
use crate::sink::schema::INSTANCE;

/// What stands under a listed name, from [`Store::SHAPE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// `table`, `view`, `foreign table`, … as the database calls it.
    pub kind: String,
    /// Whether `_instance` is a column of its primary key.
    pub keyed_by_instance: bool,
}

impl Shape {
    /// Whether it is what connector-host makes: a plain table keyed by `_instance`
    /// (first in tables made since the key was reordered, last in older ones).
    pub fn is_ours(&self) -> bool {
        self.kind == "table" && self.keyed_by_instance
    }

    /// What it is, for a message: `a view`, `a table without _instance in its
    /// primary key`.
    fn described(&self) -> String {
        if self.kind == "table" {
            format!("a table without {INSTANCE} in its primary key")
        } else {
            format!("a {}", self.kind)
        }
    }
}

/// What stands under `table`'s name, if anything does.
pub async fn of<S: Store>(store: &mut S, table: &Table) -> Result<Option<Shape>> {
    let rows = store.query(S::SHAPE, &[table.schema.as_deref().unwrap_or_default(), &table.name]).await?;
    Ok(rows.into_iter().next().map(|mut row| Shape {
        kind: row[0].take().unwrap_or_default(),
        keyed_by_instance: row[1].as_deref() == Some("1"),
    }))
}

/// Fails unless `table`, which `_tables` lists as `stream`'s, is still a table
/// connector-host made; nothing is changed either way.
pub async fn ensure_ours<S: Store>(store: &mut S, table: &Table, stream: &str) -> Result<()> {
    match of(store, table).await? {
        Some(shape) if !shape.is_ours() => Err(replaced(table, &shape, stream, &store.describe())),
        _ => Ok(()),
    }
}

/// The error for a listed `table` that is now `shape`: not ours to change.
fn replaced(table: &Table, shape: &Shape, stream: &str, destination: &str) -> Error {
    Error::new(
        ErrorKind::Conflict,
        format!(
            "{table} in {destination} is {}, not the table connector-host made for stream {stream} (it is listed in _tables, but was replaced since); it is not ours to change, and nothing was changed",
            shape.described()
        ),
    )
    .with_context("stream", stream.to_string())
    .with_hint(format!(
        "Rename {table} (or drop it if nothing needs it), then rerun with --full-refresh: the run makes the table anew and reloads {stream} whole"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_plain_table_keyed_by_instance_is_ours() {
        let shape = |kind: &str, keyed_by_instance| Shape { kind: kind.into(), keyed_by_instance };
        assert!(shape("table", true).is_ours());
        assert!(!shape("table", false).is_ours());
        assert!(!shape("view", false).is_ours());
        assert!(!shape("foreign table", true).is_ours());
        assert_eq!(shape("table", false).described(), "a table without _instance in its primary key");
        assert_eq!(shape("materialized view", false).described(), "a materialized view");
    }
}

//! Whether a table or view `_tables` lists is still the one connector-host made.
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
struct Shape {
    /// `table`, `view`, `foreign table`, … as the database calls it.
    kind: String,
    /// Whether `_instance` is a column of its primary key.
    keyed_by_instance: bool,
}

impl Shape {
    /// Whether it is a table connector-host makes: a plain table keyed by `_instance`
    /// (first in tables made since the key was reordered, last in older ones).
    fn is_ours(&self) -> bool {
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
async fn of<S: Store>(store: &mut S, table: &Table) -> Result<Option<Shape>> {
    let rows = store.query(S::SHAPE, &[table.schema.as_deref().unwrap_or_default(), &table.name]).await?;
    Ok(rows.into_iter().next().map(|mut row| Shape {
        kind: row[0].take().unwrap_or_default(),
        keyed_by_instance: row[1].as_deref() == Some("1"),
    }))
}

/// Fails unless `table`, which `_tables` lists as `stream`'s, is still a table
/// connector-host made; nothing is changed either way.
pub async fn ensure_table<S: Store>(store: &mut S, table: &Table, stream: &str) -> Result<()> {
    match of(store, table).await? {
        Some(shape) if !shape.is_ours() => {
            let what = format!("the table connector-host made for stream {stream}");
            let hint = format!(
                "Rename {table} (or drop it if nothing needs it), then rerun with --full-refresh: the run makes the table anew and reloads {stream} whole"
            );
            let err = replaced(table, &shape.described(), &what, &store.describe(), hint);
            Err(err.with_context("stream", stream.to_string()))
        }
        _ => Ok(()),
    }
}

/// Fails unless `view`, which `_tables` lists, is still a view; nothing is changed
/// either way.
pub async fn ensure_view<S: Store>(store: &mut S, view: &Table) -> Result<()> {
    match of(store, view).await? {
        Some(shape) if shape.kind != "view" => {
            let hint = format!(
                "Rename {view} (or drop it if nothing needs it) and rerun: the run makes the view anew"
            );
            let is = format!("a {}", shape.kind);
            Err(replaced(view, &is, "the view connector-host made", &store.describe(), hint))
        }
        _ => Ok(()),
    }
}

/// The error for a listed `name` that now `is` something else than `made`: not ours
/// to change.
fn replaced(name: &Table, is: &str, made: &str, destination: &str, hint: String) -> Error {
    Error::new(
        ErrorKind::Conflict,
        format!(
            "{name} in {destination} is {is}, not {made} (it is listed in _tables, but was replaced since); it is not ours to change, and nothing was changed"
        ),
    )
    .with_hint(hint)
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

//! Views a connector defines over its streams' tables: the questions its tables answer
//! only together (which paid seats nobody used for 90 days), kept next to the data in
//! every SQL destination.

use serde::Serialize;

/// A view over a connector's tables, in each SQL dialect hosts load into.
///
/// The SQL names a stream's table as `{stream}` (`{users}`); the host puts in the
/// destination's table name (`qlik_sense__users` in SQLite, `qlik_sense.users` in
/// PostgreSQL). Every row of every table carries `_instance`, and a view must keep
/// tenants apart by joining on it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ViewDescriptor {
    /// snake_case name; the view is named like a stream's table.
    pub name: &'static str,
    /// What one row is, for generated docs.
    pub description: &'static str,
    /// Streams whose tables the view reads; the host creates it once they all exist.
    pub requires: &'static [&'static str],
    /// The `SELECT` for SQLite.
    pub sqlite: &'static str,
    /// The `SELECT` for PostgreSQL.
    pub postgres: &'static str,
}

impl ViewDescriptor {
    /// `sql` with each `{stream}` this view requires replaced by `table(stream)`.
    pub fn render(&self, sql: &str, table: impl Fn(&str) -> String) -> String {
        self.requires
            .iter()
            .fold(sql.to_string(), |sql, stream| sql.replace(&format!("{{{stream}}}"), &table(stream)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_table_names() {
        let view = ViewDescriptor {
            name: "v",
            description: "",
            requires: &["users", "apps"],
            sqlite: "SELECT * FROM {users} JOIN {apps} USING (_instance)",
            postgres: "",
        };
        assert_eq!(
            view.render(view.sqlite, |s| format!("x__{s}")),
            "SELECT * FROM x__users JOIN x__apps USING (_instance)"
        );
    }
}

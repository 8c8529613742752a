//! Views a connector defines over its streams' tables: the questions its tables answer
//! only together (which paid seats nobody used for 90 days), kept next to the data in
//! every SQL destination.

use serde::Serialize;

/// A view over a connector's tables, in the SQL dialects the connector writes it for.
///
/// The SQL names a stream's table as `{stream}` (`{users}`); the host puts in the
/// destination's table name (`qlik_sense__users` in SQLite, `qlik_sense.users` in
/// PostgreSQL). Every row of every table carries `_instance`, and a view must keep
/// tenants apart by joining on it.
///
/// The contract names no database: a dialect is a name the host gives each SQL destination
/// (`sqlite`, `postgres`; its destination guide lists them), and a host with a dialect the
/// connector did not write for uses the portable SQL, or leaves the view out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ViewDescriptor {
    /// snake_case name; the view is named like a stream's table.
    pub name: &'static str,
    /// What one row is, for generated docs.
    pub description: &'static str,
    /// Streams whose tables the view reads; the host creates it once they all exist.
    pub requires: &'static [&'static str],
    /// The `SELECT` for each dialect the connector wrote one for, by the dialect's name.
    pub dialects: &'static [(&'static str, &'static str)],
    /// The `SELECT` in SQL every dialect runs, for the others; `None` when the question
    /// needs a dialect's own functions (date arithmetic, say).
    pub portable: Option<&'static str>,
}

impl ViewDescriptor {
    /// The `SELECT` for `dialect`: its own, else the portable one, else `None` (the host
    /// leaves the view out and says why).
    pub fn sql_for(&self, dialect: &str) -> Option<&'static str> {
        self.dialects.iter().find(|(name, _)| *name == dialect).map(|(_, sql)| *sql).or(self.portable)
    }

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
            dialects: &[("sqlite", "SELECT * FROM {users} JOIN {apps} USING (_instance)")],
            portable: None,
        };
        assert_eq!(
            view.render(view.sql_for("sqlite").unwrap(), |s| format!("x__{s}")),
            "SELECT * FROM x__users JOIN x__apps USING (_instance)"
        );
    }

    #[test]
    fn a_dialect_gets_its_own_sql_else_the_portable_one_else_none() {
        let view = ViewDescriptor {
            name: "v",
            description: "",
            requires: &[],
            dialects: &[("sqlite", "S"), ("postgres", "P")],
            portable: Some("ANY"),
        };
        assert_eq!(view.sql_for("postgres"), Some("P"));
        assert_eq!(view.sql_for("duckdb"), Some("ANY"));
        assert_eq!(ViewDescriptor { portable: None, ..view }.sql_for("duckdb"), None);
    }
}

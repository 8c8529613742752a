//! The streams: what each reads, its record schema, primary key and cursor, and how a
//! Qlik object becomes a record.
//!
//! Each source endpoint has one file declaring its streams ([`StreamDef`]: columns, keys,
//! cursor) and how they are read (a [`Source`] for the read engine); [`SOURCES`] lists
//! them, and everything else (the catalog, the stream names the config accepts, the
//! read) follows from that list. Adding a stream is one file and one line here.
//!
//! Source fields the connector does not know (fields Qlik adds later) are kept in each
//! record's `_extra` object, and a value of an unexpected type is moved there instead of
//! failing the sync. Enumerations (`status`, `type` …) are plain strings, so a new value is
//! kept as text.

pub mod api_key_policy;
pub mod api_keys;
pub mod apps;
pub mod consumption_executions;
pub mod groups;
pub mod license_assignments;
pub mod license_consumption;
pub mod license_overview;
pub mod license_settings;
pub mod oauth_clients;
pub mod quotas;
pub mod roles;
pub mod spaces;
pub mod tenant;
pub mod user_sessions;
pub mod users;

use connector_api::Catalog;
use connector_api::read::Source;
pub use connector_api::stream_def::{
    Access, EXTRA, Field, StreamDef, Ty, col, derived, flatten, record_spreading,
};

use crate::read::Tenant;

/// Every source, in catalog order: what the read engine runs and the catalog lists.
pub const SOURCES: &[&dyn Source<Tenant>] = &[
    &tenant::TenantSource,
    &users::Users,
    &groups::SOURCE,
    &roles::SOURCE,
    &license_overview::LicenseOverview,
    &license_assignments::LicenseAssignments,
    &license_consumption::LicenseConsumption,
    &user_sessions::UserSessions,
    &license_settings::SOURCE,
    &spaces::Spaces,
    &apps::SOURCE,
    &api_keys::SOURCE,
    &api_key_policy::SOURCE,
    &oauth_clients::SOURCE,
    &quotas::SOURCE,
    &consumption_executions::ConsumptionExecutions,
];

/// Every stream, in catalog order.
pub fn all() -> impl Iterator<Item = &'static StreamDef> {
    SOURCES.iter().flat_map(|s| s.streams().iter().copied())
}

/// Every stream name, in catalog order.
pub fn names() -> Vec<&'static str> {
    all().map(|d| d.name).collect()
}

/// The fixed catalog.
pub fn catalog() -> Catalog {
    connector_api::read::catalog(SOURCES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_are_unique() {
        let mut names = names();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
    }

    #[test]
    fn every_primary_key_and_cursor_is_a_column() {
        for d in all() {
            for k in d.primary_key.iter().chain(d.cursor.iter()) {
                assert!(d.fields.iter().any(|f| f.column == *k), "{}: {k}", d.name);
            }
            for f in d.fields {
                assert_eq!(f.column, f.column.to_lowercase(), "{}: snake_case", d.name);
                assert!(!f.description.is_empty(), "{}.{} has a description", d.name, f.column);
            }
        }
    }

    #[test]
    fn each_source_field_feeds_one_column() {
        for d in all() {
            let mut sources: Vec<&str> = d.fields.iter().filter_map(|f| f.source).collect();
            sources.sort_unstable();
            let n = sources.len();
            sources.dedup();
            assert_eq!(sources.len(), n, "{}: a source field mapped twice", d.name);
            for c in d.consumed {
                assert!(!sources.contains(c), "{}: {c} is both a column and consumed", d.name);
            }
        }
    }

    #[test]
    fn the_licence_key_is_never_a_column_nor_extra() {
        let overview = &license_overview::LICENSE_OVERVIEW;
        let serde_json::Value::Object(src) =
            serde_json::json!({"licenseNumber": "1", "licenseKey": "eyJsecret"})
        else {
            unreachable!()
        };
        assert!(!overview.record(src, &[]).to_string().contains("eyJsecret"));
    }
}

//! `quotas`: what the tenant's subscription entitles it to, and how much of it is used
//! (`/v1/quotas?reportUsage=true`, https://qlik.dev/apis/rest/quotas): app memory, upload
//! size, shared spaces … On a capacity subscription, metered on volume rather than seats,
//! these limits are what is bought.

use serde_json::{Map, Value};

use super::{Access, StreamDef, Ty, col, derived, record_spreading};
use crate::read::Listing;

/// The `quotas` stream.
pub const QUOTAS: StreamDef = StreamDef {
    name: "quotas",
    description: "Quotas of the tenant's subscription (app memory, upload size, spaces …) with their limit and use.",
    primary_key: &["id"],
    cursor: None,
    access: Access::Everyone,
    fields: &[
        col(
            "id",
            "id",
            Ty::String,
            "Quota: app_mem_size, app_upload_disk_size, shared_spaces … (other values kept as text).",
        ),
        col("type", "type", Ty::String, "Resource type; always quotas."),
        derived("quota", Ty::Number, "The limit; -1 when there is none (attributes.quota)."),
        derived(
            "unit",
            Ty::String,
            "Unit of limit and use: bytes for memory, else what is counted (attributes.unit).",
        ),
        derived("usage", Ty::Number, "Current use (attributes.usage)."),
        derived(
            "warning_thresholds",
            Ty::Array,
            "Shares of the limit (0 to 1) past which Qlik warns (attributes.warningThresholds).",
        ),
    ],
    consumed: &[],
};

/// `attributes` fields and their columns.
const ATTRIBUTE_COLUMNS: [(&str, &str); 4] =
    [("quota", "quota"), ("unit", "unit"), ("usage", "usage"), ("warningThresholds", "warning_thresholds")];

/// The record of quota `src`, its attributes spread over columns; attributes the connector
/// does not know stay in `_extra.attributes`.
pub fn record(src: Map<String, Value>) -> Value {
    record_spreading(&QUOTAS, src, &[("attributes", &ATTRIBUTE_COLUMNS)])
}

/// Reads every quota with its use.
pub const SOURCE: Listing = Listing {
    stream: &[&QUOTAS],
    path: "/api/v1/quotas",
    max_limit: None,
    query: &[("reportUsage", "true")],
    record: Some(record),
};

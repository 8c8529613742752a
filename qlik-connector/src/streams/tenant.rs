//! `tenant`: the tenant itself (`/v1/tenants/me`, which redirects to
//! `/v1/tenants/{id}`), with its licence status from `/v1/licenses/status`.

use async_trait::async_trait;
use connector_api::read::{Chain, Plan, Records, Source, once};
use connector_api::{ErrorKind, LogLevel, Result};
use serde_json::{Map, Value};

use super::{Access, EXTRA, StreamDef, Ty, col, derived, flatten};
use crate::read::{Ctx, Tenant, get, get_object};

/// The `tenant` stream.
pub const TENANT: StreamDef = StreamDef {
    name: "tenant",
    description: "The Qlik Cloud tenant the key belongs to, with its licence status (one record).",
    primary_key: &["id"],
    cursor: None,
    access: Access::Partial("licence columns null"),
    fields: &[
        col("id", "id", Ty::String, "Tenant id."),
        col("name", "name", Ty::String, "Display name of the tenant."),
        col(
            "hostnames",
            "hostnames",
            Ty::Array,
            "Host names mapped to the tenant; the first is the display name.",
        ),
        col("datacenter", "datacenter", Ty::String, "Datacenter (region) hosting the tenant."),
        col(
            "status",
            "status",
            Ty::String,
            "Tenant status: active, disabled, deleted (other values kept as text).",
        ),
        col("created", "created", Ty::DateTime, "When the tenant was created."),
        col("last_updated", "lastUpdated", Ty::DateTime, "When the tenant record last changed."),
        col("created_by_user", "createdByUser", Ty::String, "Id of the user who created the tenant."),
        derived(
            "license_status",
            Ty::String,
            "Licence status from licenses/status: Ok, Blacklisted, Expired, Missing; null when the key may not read licences.",
        ),
        derived("license_type", Ty::String, "Licence type from licenses/status: Signed or Plain."),
        derived("license_product", Ty::String, "Licensed product name."),
        derived("license_valid", Ty::String, "Licence validity period."),
        derived("license_trial", Ty::Boolean, "Whether the licence is a trial."),
        derived("license_origin", Ty::String, "Licence origin: Internal or External."),
        derived("license_deactivated", Ty::Boolean, "Whether the licence is deactivated (licenses/status)."),
        derived("license_extension_status", Ty::String, "Status of a licence extension (licenses/status)."),
    ],
    consumed: &["links"],
};

/// `licenses/status` fields and the column each fills.
const LICENCE_STATUS_COLUMNS: [(&str, &str); 8] = [
    ("status", "license_status"),
    ("type", "license_type"),
    ("product", "license_product"),
    ("valid", "license_valid"),
    ("trial", "license_trial"),
    ("origin", "license_origin"),
    ("deactivated", "license_deactivated"),
    ("extensionStatus", "license_extension_status"),
];

/// Reads the tenant and its licence status; a key that may not read the status still
/// reads the tenant, with a warning.
pub struct TenantSource;

#[async_trait]
impl Source<Tenant> for TenantSource {
    fn streams(&self) -> &'static [&'static StreamDef] {
        &[&TENANT]
    }

    async fn plan(&self, ctx: &Ctx) -> Result<Plan> {
        let tenant = get_object(ctx, ctx.connector.url("/api/v1/tenants/me", &[])).await?;
        let status = match get(ctx, &ctx.connector.url("/api/v1/licenses/status", &[])).await {
            Ok(Value::Object(status)) => status,
            Ok(_) => Map::new(),
            Err(err) if err.kind() == ErrorKind::Permission => {
                let warning =
                    "The API key may not read licenses/status; the tenant's licence columns are null";
                ctx.log(LogLevel::Warn, warning).await?;
                Map::new()
            }
            Err(err) => return Err(err),
        };
        let (columns, rest) = flatten(&TENANT, status, &LICENCE_STATUS_COLUMNS);
        let record = move |tenant, out: &mut Records| {
            let mut record = TENANT.record(tenant, &columns);
            if !rest.is_empty() {
                record[EXTRA]["licenseStatus"] = Value::Object(rest.clone());
            }
            out.push(&TENANT, record);
            Ok(())
        };
        Ok(Plan::chain(Chain::new(once(tenant), record)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_licence_status_field_is_kept() {
        let Value::Object(status) = json!({"status": "Ok", "deactivated": true, "extensionStatus": "pending",
            "graceUntil": "2027-01-01"})
        else {
            unreachable!()
        };
        let (columns, rest) = flatten(&TENANT, status, &LICENCE_STATUS_COLUMNS);
        let column = |c: &str| columns.iter().find(|(k, _)| *k == c).map(|(_, v)| v.clone());
        assert_eq!(column("license_status"), Some(json!("Ok")));
        assert_eq!(column("license_deactivated"), Some(json!(true)));
        assert_eq!(column("license_extension_status"), Some(json!("pending")));
        assert_eq!(column("license_trial"), Some(Value::Null));
        assert_eq!(Value::Object(rest), json!({"graceUntil": "2027-01-01"}));
    }
}

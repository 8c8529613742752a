//! The tenant's OAuth clients as `/api/v1/oauth-clients` lists them to a Tenant Admin
//! (`OAuthClientAdminListItem`, https://qlik.dev/apis/rest/oauth-clients): machine-to-machine
//! clients (web, `client_credentials`, consent trusted) beside web, native and SPA clients.

use serde_json::{Value, json};

use super::Tenant;
use crate::synth::{Kind, h, pick, rfc3339_ms, spread_ms};

const APP_TYPES: [&str; 4] = ["web", "web", "native", "spa"];

impl Tenant {
    /// The `clientId` of OAuth client `i`: 32 hex digits, as Qlik issues them.
    pub(crate) fn oauth_client_id(&self, i: u64) -> String {
        format!(
            "{:016x}{:016x}",
            h(self.seed, Kind::OAuthClient, i, 1),
            h(self.seed, Kind::OAuthClient, i, 2)
        )
    }

    /// The admin listing's JSON of OAuth client `i`; client 0 is machine-to-machine.
    pub(crate) fn oauth_client_json(&self, i: u64) -> Value {
        let r = h(self.seed, Kind::OAuthClient, i, 3);
        let app_type = if i == 0 { "web" } else { pick(&APP_TYPES, r) };
        let machine = app_type == "web" && r.is_multiple_of(2) || i == 0;
        let created = spread_ms(r >> 8);
        let mut v = json!({
            "clientId": self.oauth_client_id(i),
            "clientName": format!("{} client {i}", if machine { "Integration" } else { "Embedding" }),
            "description": format!("Simulated {app_type} OAuth client {i}"),
            "appType": app_type,
            "ownerId": self.user_id(0),
            "createdAt": rfc3339_ms(created),
            "updatedAt": rfc3339_ms(created + (r >> 40) as i64 % 86_400_000),
            "allowedScopes": if machine { json!(["user_default", "admin_classic"]) } else { json!(["user_default"]) },
            "connectionConfig": {"consentMethod": if machine { "trusted" } else { "required" }, "status": "active"},
        });
        if app_type == "web" {
            v["allowedGrantTypes"] = if machine {
                json!(["client_credentials"])
            } else {
                json!(["urn:qlik:oauth:user-impersonation"])
            };
        }
        if !machine {
            v["redirectUris"] = json!([format!("https://apps.example.com/{i}/callback")]);
            v["allowedOrigins"] = json!(["https://apps.example.com"]);
        }
        v
    }
}

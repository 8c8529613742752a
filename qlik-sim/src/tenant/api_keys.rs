//! The tenant's API keys as `/api/v1/api-keys` lists them: the simulator's issued keys first.

use serde_json::{Value, json};

use super::Tenant;
use crate::keys::KeyKind;
use crate::synth::{Kind, h, object_id, pick, rfc3339_ms, spread_ms};

impl Tenant {
    /// The id of API key `i` (also the `jti` of an issued key).
    pub(crate) fn api_key_id(&self, i: u64) -> String {
        object_id(self.seed, Kind::ApiKey, i)
    }

    /// The user (index) who created API key `i`: a user who is not a Tenant Admin lists only
    /// their own keys (https://qlik.dev/apis/rest/api-keys).
    pub(crate) fn api_key_owner(&self, i: u64) -> u64 {
        match KeyKind::ALL.get(i as usize) {
            Some(kind) => kind.user_index(),
            None => (h(self.seed, Kind::ApiKey, i, 1) >> 8) % self.users,
        }
    }

    /// The `ApiKey` JSON of key `i`.
    pub(crate) fn api_key_json(&self, i: u64) -> Value {
        let (sub, status, created_ms, expiry_ms, description) = match KeyKind::ALL.get(i as usize) {
            Some(kind) => {
                let (iat, exp) = kind.lifetime(self.now_s);
                let sub = self.user_id(self.api_key_owner(i));
                (
                    sub,
                    kind.status(),
                    iat * 1000,
                    exp * 1000,
                    format!("{kind:?} key (issued by the simulator)"),
                )
            }
            None => {
                let r = h(self.seed, Kind::ApiKey, i, 1);
                let created = spread_ms(r);
                let expiry = created + ((30 + (r >> 20) % 335) * 86_400_000) as i64;
                let status = pick(&["active", "active", "active", "expired", "revoked"], r >> 40);
                (self.user_id(self.api_key_owner(i)), status, created, expiry, format!("Integration key {i}"))
            }
        };
        json!({
            "id": self.api_key_id(i),
            "tenantId": self.tenant_id,
            "description": description,
            "sub": sub,
            "subType": "user",
            "status": status,
            "createdByUser": sub,
            "created": rfc3339_ms(created_ms),
            "lastUpdated": rfc3339_ms(created_ms),
            "expiry": rfc3339_ms(expiry_ms),
        })
    }
}

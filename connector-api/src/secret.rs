//! Secrets in connector configs.
//!
//! Secret config fields are [`SecretString`]s: their `Debug` prints a redaction, and
//! their value is reachable only through [`ExposeSecret`], which a connector should
//! call in exactly one place (the request header). Their JSON Schema, from
//! [`schema`], carries `"writeOnly": true` and `"x-secret": true` so hosts know which
//! fields to resolve from the environment or a file and never to print or store.

use schemars::{Schema, SchemaGenerator, json_schema};
pub use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

/// JSON Schema of a secret string; use with
/// `#[schemars(schema_with = "connector_api::secret::schema")]`.
pub fn schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "minLength": 1,
        "writeOnly": true,
        "x-secret": true,
    })
}

/// Whether a property schema is marked secret.
pub fn is_secret(property_schema: &Value) -> bool {
    property_schema.get("x-secret").and_then(Value::as_bool).unwrap_or(false)
}

/// Names of the top-level properties that a config schema marks secret.
pub fn secret_fields(config_schema: &Value) -> Vec<String> {
    config_schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| props.iter().filter(|(_, s)| is_secret(s)).map(|(name, _)| name.clone()).collect())
        .unwrap_or_default()
}

/// Copies `config` with every secret top-level field replaced by `"**redacted**"`, for
/// printing or storing a config.
pub fn redact(config_schema: &Value, config: &Value) -> Value {
    let mut out = config.clone();
    if let Some(obj) = out.as_object_mut() {
        for field in secret_fields(config_schema) {
            if let Some(v) = obj.get_mut(&field) {
                *v = Value::String("**redacted**".into());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redact_replaces_only_secret_fields() {
        let schema =
            json!({"properties": {"key": {"type": "string", "x-secret": true}, "url": {"type": "string"}}});
        let config = json!({"key": "s3cr3t", "url": "https://x"});
        assert_eq!(secret_fields(&schema), vec!["key".to_string()]);
        assert_eq!(redact(&schema, &config), json!({"key": "**redacted**", "url": "https://x"}));
    }

    #[test]
    fn secret_string_debug_hides_value() {
        let s = SecretString::from("canary-123");
        assert!(!format!("{s:?}").contains("canary-123"));
    }
}

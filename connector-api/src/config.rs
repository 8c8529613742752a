//! Turning the JSON a host hands over into a connector's typed config.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Error, ErrorKind, Result};

/// Parses `config` into `T`, naming the offending field on failure.
///
/// Declare `T` with `#[serde(deny_unknown_fields)]` so a misspelt option is an error
/// rather than silently ignored. The error message names the field path
/// (`streams[2]`, `api_key` …) and serde's reason, never the value, so a secret in a
/// mistyped field cannot leak through the error.
pub fn parse<T: DeserializeOwned>(config: &Value) -> Result<T> {
    serde_path_to_error::deserialize(config).map_err(|err| {
        let path = err.path().to_string();
        let field = if path == "." { "config".to_string() } else { path };
        let reason = redact_reason(&err.inner().to_string());
        Error::new(ErrorKind::Config, format!("{field}: {reason}")).with_context("field", field)
    })
}

/// serde_json reports `invalid type: string "…", expected …`, quoting the value. Values
/// may be secrets, so keep only the shape of the complaint.
fn redact_reason(reason: &str) -> String {
    let Some(start) = reason.find('"') else {
        return reason.to_string();
    };
    let Some(len) = reason[start + 1..].find("\", ") else {
        return reason.to_string();
    };
    let end = start + 1 + len + 1;
    format!("{}{}", &reason[..start].trim_end(), &reason[end..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        url: String,
        #[serde(default)]
        page_size: Option<u32>,
    }

    #[test]
    fn missing_field_is_named() {
        let err = parse::<Sample>(&json!({})).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.message().contains("missing field `url`"), "{err}");
    }

    #[test]
    fn wrong_type_names_field_without_value() {
        let err = parse::<Sample>(&json!({"url": "x", "page_size": "hunter2"})).unwrap_err();
        assert_eq!(err.context_value("field"), Some("page_size"));
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(err.message().contains("invalid type: string"), "{err}");
    }

    #[test]
    fn unknown_field_is_named() {
        let err = parse::<Sample>(&json!({"url": "x", "pagesize": 3})).unwrap_err();
        assert!(err.message().contains("unknown field `pagesize`"), "{err}");
    }
}

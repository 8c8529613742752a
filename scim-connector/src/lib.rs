#![doc = include_str!("../docs.md")]
#![deny(missing_docs)]

pub mod client;
pub mod config;
pub mod error;
pub mod server;
pub mod streams;

use async_trait::async_trait;
use connector_api::http::{HttpEvent, RetryPolicy};
use connector_api::read::Options;
use connector_api::{
    Catalog, CheckReport, CheckStatus, ConfiguredCatalog, Connector, ErrorKind, MessageStream, Metadata,
    Result, Spec, State,
};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

pub use client::ScimClient;
pub use config::ScimConfig;

/// The SCIM 2.0 connector (id `scim`).
#[derive(Debug, Clone, Default)]
pub struct ScimConnector {
    /// Overrides the shared default retry policy; tests use a fast one.
    retry: Option<RetryPolicy>,
}

impl ScimConnector {
    /// A connector that retries with `policy` instead of the shared default.
    pub fn with_retry_policy(policy: RetryPolicy) -> Self {
        ScimConnector { retry: Some(policy) }
    }

    fn client(&self, config: &ScimConfig) -> Result<ScimClient> {
        let client = ScimClient::new(config)?;
        Ok(match &self.retry {
            Some(policy) => client.with_policy(policy.clone()),
            None => client,
        })
    }
}

connector_api::register_connector!(ScimConnector::default());

/// What `check` reads of `/ServiceProviderConfig` (RFC 7643 §5).
#[derive(Debug, Default, Deserialize)]
struct ServiceProviderConfig {
    #[serde(default)]
    filter: Supported,
}

#[derive(Debug, Default, Deserialize)]
struct Supported {
    #[serde(default)]
    supported: bool,
}

/// `check` gives up quickly: an operator is waiting for the answer.
fn probe_policy() -> RetryPolicy {
    RetryPolicy { max_attempts: 2, max_elapsed: Duration::from_secs(20), ..RetryPolicy::default() }
}

#[async_trait]
impl Connector for ScimConnector {
    fn metadata(&self) -> Metadata {
        Metadata {
            id: "scim",
            name: "SCIM 2.0",
            version: env!("CARGO_PKG_VERSION"),
            description: "Users, groups and group memberships from any SCIM 2.0 service provider.",
            documentation: "scim-connector/docs.md",
        }
    }

    fn spec(&self) -> Spec {
        Spec { config_schema: schemars::schema_for!(ScimConfig).to_value() }
    }

    async fn check(&self, config: &Value) -> Result<CheckReport> {
        let config = ScimConfig::from_json(config)?;
        let client = self.client(&config)?.with_policy(probe_policy());
        let mut report = CheckReport::default();
        let mut events: Vec<HttpEvent> = Vec::new();

        match client.list("Users", 1, 1, None, &mut events).await {
            Ok(page) => {
                report.push("authenticate", CheckStatus::Ok, "the server accepted the token");
                report.push("read users", CheckStatus::Ok, format!("{} users", page.total_results));
            }
            Err(err) => {
                let step = match err.kind() {
                    ErrorKind::Auth => "authenticate",
                    ErrorKind::Permission => "read users",
                    _ => "reach server",
                };
                report.fail(step, &err);
                for skipped in
                    ["read users", "read groups", "incremental users"].into_iter().filter(|s| *s != step)
                {
                    report.push(skipped, CheckStatus::Skipped, format!("not attempted: {step} failed"));
                }
                return Ok(report);
            }
        }
        match client.list("Groups", 1, 1, None, &mut events).await {
            Ok(page) => report.push("read groups", CheckStatus::Ok, format!("{} groups", page.total_results)),
            Err(err) => report.fail("read groups", &err),
        }
        match client.get::<ServiceProviderConfig>("ServiceProviderConfig", &[], &mut events).await {
            Ok(spc) if spc.filter.supported => {
                report.push("incremental users", CheckStatus::Ok, "the server supports filtering")
            }
            Ok(_) => report.push(
                "incremental users",
                CheckStatus::Warning,
                "the server says it does not support filtering: read users with --full-refresh",
            ),
            Err(err) => report.push(
                "incremental users",
                CheckStatus::Warning,
                format!("could not read /ServiceProviderConfig ({err}); incremental reads of users may fail"),
            ),
        }
        Ok(report)
    }

    async fn discover(&self, config: &Value) -> Result<Catalog> {
        ScimConfig::from_json(config)?;
        Ok(streams::catalog())
    }

    fn source_identity(&self, config: &Value) -> Result<String> {
        let url = ScimConfig::from_json(config)?.base_url()?;
        Ok(url.as_str().trim_end_matches('/').to_string())
    }

    fn static_catalog(&self) -> Option<Catalog> {
        Some(streams::catalog())
    }

    async fn read(
        &self,
        config: &Value,
        catalog: &ConfiguredCatalog,
        state: &State,
    ) -> Result<MessageStream> {
        let config = ScimConfig::from_json(config)?;
        let server = Arc::new(server::Server::new(self.client(&config)?, &config)?);
        // Streams one after another: a SCIM server is often a small service of an identity
        // provider, so at most three pages are in memory however large the directory.
        connector_api::read::read(server, streams::SOURCES, catalog, state, Options::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_marks_the_token_secret() {
        let schema = ScimConnector::default().spec().config_schema;
        assert_eq!(connector_api::secret::secret_fields(&schema), vec!["token".to_string()]);
        assert_eq!(schema["properties"]["token"]["writeOnly"], true);
        assert_eq!(schema["required"], serde_json::json!(["base_url", "token"]));
    }
}

#![doc = include_str!("../docs.md")]
#![deny(missing_docs)]

pub mod api_version;
pub mod auth;
pub mod check;
pub mod client;
pub mod config;
pub mod error;
pub mod next_link;
pub mod oauth;
pub mod pagination;
pub mod read;
pub mod remediation;
pub mod streams;
pub mod views;

use std::sync::Arc;

use async_trait::async_trait;
use connector_api::{
    Catalog, CheckReport, ConfiguredCatalog, Connector, MessageStream, Metadata, Result, Spec, State,
};
use serde_json::Value;
use time::OffsetDateTime;

pub use config::{QlikConfig, Settings};

/// The connector's registry id.
pub const ID: &str = "qlik-sense";

/// Reads a Qlik Cloud tenant's users, licences, usage and content with an API key or an
/// OAuth machine-to-machine client.
#[derive(Debug, Default, Clone, Copy)]
pub struct QlikConnector;

connector_api::register_connector!(QlikConnector);

#[async_trait]
impl Connector for QlikConnector {
    fn metadata(&self) -> Metadata {
        Metadata {
            id: ID,
            name: "Qlik Sense (Qlik Cloud)",
            version: env!("CARGO_PKG_VERSION"),
            description: "Users, licences, licence consumption, user sessions, spaces, apps, API keys and OAuth clients of a Qlik Cloud tenant, read with an API key or an OAuth client.",
            documentation: "qlik-connector/docs.md",
        }
    }

    fn spec(&self) -> Spec {
        let schema = schemars::schema_for!(QlikConfig);
        Spec { config_schema: schema.to_value() }
    }

    async fn check(&self, config: &Value) -> Result<CheckReport> {
        check::run(config).await
    }

    async fn discover(&self, config: &Value) -> Result<Catalog> {
        let settings = Settings::from_json(config)?;
        let mut catalog = streams::catalog();
        catalog.streams.retain(|s| settings.streams.contains(&s.name.as_str()));
        Ok(catalog)
    }

    /// The tenant's host (and port, if any): `acme.eu.qlikcloud.com`. Two configs for
    /// one tenant share its rows and checkpoints whatever their key or tuning.
    fn source_identity(&self, config: &Value) -> Result<String> {
        Ok(Settings::from_json(config)?.tenant_host())
    }

    fn views(&self) -> Vec<connector_api::ViewDescriptor> {
        views::ALL.to_vec()
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
        let settings = Settings::from_json(config)?;
        let sign_in = client::SignIn::from_settings(&settings)?;
        auth::ensure_not_expired(sign_in.key_claims(), OffsetDateTime::now_utc())?;
        let mut catalog = catalog.clone();
        catalog.streams.retain(|s| settings.streams.contains(&s.stream.name.as_str()));
        let client = Arc::new(client::QlikClient::new(&settings, sign_in)?);
        client.sign_in().await?;
        let notices = client.notices();
        let options = connector_api::read::Options { max_concurrency: settings.max_concurrency };
        let messages = connector_api::read::read(
            Arc::new(read::Tenant::new(client, settings)),
            streams::SOURCES,
            &catalog,
            state,
            options,
        )?;
        Ok(api_version::surface(messages, notices))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_marks_the_key_secret() {
        let spec = QlikConnector.spec().config_schema;
        assert_eq!(spec["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert_eq!(connector_api::secret::secret_fields(&spec), ["api_key", "client_secret"]);
        let required: Vec<&str> =
            spec["required"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        assert_eq!(required, ["tenant_url"], "api_key or an OAuth client, checked by Settings");
        assert_eq!(spec["properties"]["requests_per_minute"]["default"], 1000);
        assert_eq!(spec["properties"]["rate_window_seconds"]["default"], 300);
    }

    #[test]
    fn docs_carry_every_remediation() {
        let docs = include_str!("../docs.md");
        for hint in remediation::ALL {
            assert!(docs.contains(hint), "docs.md lacks: {hint}");
        }
    }

    #[test]
    fn catalog_is_static_and_complete() {
        let c = QlikConnector.static_catalog().unwrap();
        let consumption = c.stream("license_consumption").unwrap();
        assert_eq!(consumption.cursor_field.as_deref(), Some("end_time"));
        assert_eq!(consumption.supported_sync_modes[0], connector_api::SyncMode::Incremental);
        let assignments = c.stream("license_assignments").unwrap();
        assert_eq!(assignments.primary_key, ["subject", "type"]);
        assert_eq!(assignments.json_schema["properties"]["created"]["format"], "date-time");
        assert_eq!(
            assignments.json_schema["properties"]["excess"]["type"],
            serde_json::json!(["boolean", "null"])
        );
    }
}

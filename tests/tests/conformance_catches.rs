//! The conformance suite is not a rubber stamp: a connector that breaks the contract
//! in known ways gets exactly those checks failed.

use std::sync::Arc;

use async_trait::async_trait;
use connector_api::testkit::{Verdict, run_conformance};
use connector_api::{
    Catalog, CheckReport, ConfiguredCatalog, Connector, Message, MessageStream, Metadata, Result, Spec, State,
};
use futures::StreamExt;
use scim_connector::ScimConnector;
use serde_json::{Value, json};
use tests::scim_server::{ScimServer, ScimServerConfig};

/// The SCIM connector with five contract violations bolted on.
struct Broken(ScimConnector);

#[async_trait]
impl Connector for Broken {
    fn metadata(&self) -> Metadata {
        // Not kebab-case, not semver, and not in the registry.
        Metadata { id: "Broken_Scim", version: "1.0", ..self.0.metadata() }
    }

    fn spec(&self) -> Spec {
        // The token loses its secret markers.
        let mut schema = self.0.spec().config_schema;
        schema["properties"]["token"] = json!({"type": "string"});
        Spec { config_schema: schema }
    }

    async fn check(&self, config: &Value) -> Result<CheckReport> {
        self.0.check(config).await
    }

    async fn discover(&self, config: &Value) -> Result<Catalog> {
        self.0.discover(config).await
    }

    fn source_identity(&self, config: &Value) -> Result<String> {
        self.0.source_identity(config)
    }

    async fn read(
        &self,
        config: &Value,
        catalog: &ConfiguredCatalog,
        state: &State,
    ) -> Result<MessageStream> {
        // Logs the token at trace level.
        tracing::trace!(token = %config["token"].as_str().unwrap_or_default(), "Reading");
        let inner = self.0.read(config, catalog, state).await?;
        // A `groups` record whether or not `groups` was selected (and even when the
        // token is rejected), and a user without its primary key.
        let extra = vec![
            Ok(Message::record("groups", json!({"id": "g-extra", "member_count": 0}))),
            Ok(Message::record("users", json!({"user_name": "no-id"}))),
        ];
        Ok(futures::stream::iter(extra).chain(inner).boxed())
    }
}

#[tokio::test]
async fn broken_connector_fails_the_checks_it_breaks() {
    let server = ScimServer::start(ScimServerConfig::small()).await.unwrap();
    let good = json!({"base_url": server.base_url(), "token": server.token()});
    let bad = json!({"base_url": server.base_url(), "token": "wrong-token-4411"});
    let report = run_conformance(Arc::new(Broken(ScimConnector::default())), good, bad, &["token"]).await;
    println!("{report}");

    let mut failed: Vec<&str> = report.failures().iter().map(|o| o.check).collect();
    failed.sort_unstable();
    assert_eq!(
        failed,
        vec![
            "metadata",
            "metadata.registry",
            "read.bad_config",
            "read.primary_keys",
            "read.records",
            "read.selection",
            "read.status",
            "secrets.logs",
            "spec.secrets",
        ]
    );
    // The report names the leak without quoting the secret.
    let logs = report.outcome("secrets.logs").unwrap();
    assert_eq!(logs.detail, "secret #1 appears in log output; secret #2 appears in log output");
    assert!(!report.to_string().contains(server.token()));
    assert_eq!(report.outcome("check.bad_config").unwrap().verdict, Verdict::Passed);
    let caught = std::panic::catch_unwind(|| report.assert_passed()).unwrap_err();
    let text = caught.downcast_ref::<String>().unwrap();
    assert!(text.contains("FAIL spec.secrets"), "{text}");
}

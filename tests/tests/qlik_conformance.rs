//! The Qlik connector passes the shared conformance suite of `connector-api`; the same
//! connector made to ignore its saved state does not.

use std::sync::Arc;

use async_trait::async_trait;
use connector_api::testkit::{Verdict, run_conformance};
use connector_api::{
    Catalog, CheckReport, ConfiguredCatalog, Connector, MessageStream, Metadata, Result, Spec, State,
};
use qlik_connector::QlikConnector;
use serde_json::{Value, json};
use tests::qlik_sim::{SimConfig, Simulator};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qlik_connector_conforms() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let good =
        json!({"tenant_url": sim.base_url(), "api_key": sim.keys().admin, "requests_per_minute": 100000});
    let bad = json!({"tenant_url": sim.base_url(), "api_key": sim.keys().revoked});
    let report = run_conformance(Arc::new(QlikConnector), good, bad, &["api_key"]).await;
    println!("{report}");
    report.assert_passed();
    assert_eq!(report.records.get("users").copied(), Some(sim.ground_truth().stream("users").count));
}

/// The Qlik connector, reading every incremental stream from scratch whatever its state.
struct Forgetful;

#[async_trait]
impl Connector for Forgetful {
    fn metadata(&self) -> Metadata {
        QlikConnector.metadata()
    }

    fn spec(&self) -> Spec {
        QlikConnector.spec()
    }

    async fn check(&self, config: &Value) -> Result<CheckReport> {
        QlikConnector.check(config).await
    }

    async fn discover(&self, config: &Value) -> Result<Catalog> {
        QlikConnector.discover(config).await
    }

    fn source_identity(&self, config: &Value) -> Result<String> {
        QlikConnector.source_identity(config)
    }

    async fn read(
        &self,
        config: &Value,
        catalog: &ConfiguredCatalog,
        _state: &State,
    ) -> Result<MessageStream> {
        QlikConnector.read(config, catalog, &State::default()).await
    }
}

/// The suite lets a resume re-read an overlap before its checkpoint (the look-back that
/// picks up tied and late events), but not start over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_that_ignores_its_state_is_caught() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let good =
        json!({"tenant_url": sim.base_url(), "api_key": sim.keys().admin, "requests_per_minute": 100000});
    let bad = json!({"tenant_url": sim.base_url(), "api_key": sim.keys().revoked});
    let report = run_conformance(Arc::new(Forgetful), good, bad, &["api_key"]).await;
    let failed: Vec<(&str, &str)> = report
        .failures()
        .iter()
        .map(|o| (o.check, o.detail.as_str()))
        .filter(|(check, _)| !check.starts_with("metadata"))
        .collect();
    assert_eq!(failed.len(), 2, "{report}");
    assert_eq!(report.outcome("read.resume").map(|o| o.verdict), Some(Verdict::Failed));
    assert!(failed[0].1.contains("started over (its first record came again)"), "{}", failed[0].1);
    assert!(
        failed[1].1.starts_with("stream `license_consumption` started over from the final state"),
        "{}",
        failed[1].1
    );
}

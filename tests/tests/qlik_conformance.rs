//! The Qlik connector passes the shared conformance suite of `connector-api`.

use std::sync::Arc;

use connector_api::testkit::run_conformance;
use qlik_connector::QlikConnector;
use serde_json::json;
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

//! The Qlik Sense connector passes the conformance suite against the Qlik Cloud
//! simulator.

use std::sync::Arc;

use connector_api::testkit::{Verdict, run_conformance};
use qlik_connector::QlikConnector;
use serde_json::json;
use tests::qlik_sim::{SimConfig, Simulator};

#[tokio::test]
async fn qlik_connector_conforms() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    // The simulator's budget is generous; pacing at Qlik's real 1000/min would only
    // slow the suite down.
    let good =
        json!({"tenant_url": sim.base_url(), "api_key": sim.keys().admin, "requests_per_minute": 1_000_000});
    let bad = json!({"tenant_url": sim.base_url(), "api_key": sim.keys().revoked, "requests_per_minute": 1_000_000});

    let report = run_conformance(Arc::new(QlikConnector), good, bad, &["api_key"]).await;
    println!("{report}");
    report.assert_passed();

    assert_eq!(report.connector, "qlik-sense");
    assert!(report.records.values().sum::<u64>() > 0);
    assert_eq!(report.outcome("check.bad_config").unwrap().verdict, Verdict::Passed);
}

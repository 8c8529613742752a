//! `consumption_executions` (issue 16): a capacity tenant's metering records land exactly as
//! the simulator lists them, keyed by the connector's derived key, the same rows run after
//! run; a user-based tenant, which answers the endpoint with 404, lands none and the run
//! goes on.

mod qlik_support;

use connector_api::{CheckStatus, Connector, State};
use qlik_connector::QlikConnector;
use qlik_connector::streams::consumption_executions::CONSUMPTION_EXECUTIONS;
use qlik_connector::streams::names;
use qlik_support::{assert_exact, config, read};
use serde_json::{Value, json};
use tests::qlik_sim::{SimConfig, Simulator, Subscription, execution_key};

const STREAM: &str = "consumption_executions";

async fn tenant(subscription: Subscription) -> Simulator {
    Simulator::start(SimConfig { subscription, ..SimConfig::small() }).await.unwrap()
}

/// The rows of one read of the stream at `page_size`, sorted by key.
async fn rows(sim: &Simulator, page_size: u64) -> Vec<Value> {
    let c = config(sim, &sim.keys().admin, json!({"page_size": page_size}));
    let outcome = read(&c, Some(&[STREAM]), &State::default(), false).await;
    assert_exact(sim, &outcome, &[STREAM], &format!("page_size {page_size}"));
    let mut rows = outcome.stream(STREAM).to_vec();
    rows.sort_by_key(|r| r["execution_key"].as_str().unwrap().to_owned());
    rows
}

#[tokio::test]
async fn a_capacity_tenants_metering_records_land_exactly_and_stay_the_same() {
    let sim = tenant(Subscription::CapacityBased).await;
    let expected = &sim.ground_truth().consumption_executions;
    // 3 monthly periods of 3 tenant meters, 8 users' automation runs and 12 apps' reloads.
    assert_eq!(expected.len(), 3 * (3 + 8 + 12));

    let first = rows(&sim, 7).await;
    assert_eq!(first.len(), expected.len());
    for record in expected {
        let key = execution_key(record);
        let row = first.iter().find(|r| r["execution_key"] == key.as_str()).expect("every record lands");
        for f in CONSUMPTION_EXECUTIONS.fields {
            let Some(source) = f.source else { continue };
            assert_eq!(row[f.column], record[source], "{}: {key}", f.column);
        }
        assert_eq!(row["_extra"], json!({}), "every field Qlik sends is a column");
    }
    let overage: Vec<&Value> = first.iter().filter(|r| r["overage"] == true).collect();
    assert_eq!(overage.len(), 1, "the current period's automation runs");
    assert_eq!(
        (&overage[0]["resource_type"], &overage[0]["period_start"], &overage[0]["scope"]),
        (&json!("automations"), &json!("2026-10-01"), &json!(["tenant", "resourceType"]))
    );
    assert_eq!(first.iter().filter(|r| r["user_id"].is_string()).count(), 3 * 8);
    assert_eq!(first.iter().filter(|r| r["resource_id"].is_string()).count(), 3 * 12);

    // Twice more, at Qlik's largest page: the same rows, no duplicates.
    sim.clear_requests();
    assert_eq!(rows(&sim, 200).await, first);
    let requests: Vec<_> =
        sim.requests().into_iter().filter(|r| r.path == "/api/v1/consumption/executions").collect();
    assert_eq!(requests.len(), 1, "69 records are one page of 200");
    assert_eq!(requests[0].query, "limit=200");
    assert_eq!(rows(&sim, 200).await, first);

    let report = QlikConnector.check(&config(&sim, &sim.keys().admin, json!({}))).await.unwrap();
    assert_eq!(probe(&report), CheckStatus::Ok, "{report:#?}");
}

#[tokio::test]
async fn a_user_based_tenant_answers_404_and_the_run_goes_on() {
    let sim = tenant(Subscription::UserBased).await;
    assert!(sim.ground_truth().consumption_executions.is_empty());
    let c = config(&sim, &sim.keys().admin, json!({}));
    let outcome = read(&c, None, &State::default(), false).await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_exact(&sim, &outcome, &names(), "user-based tenant");
    assert!(outcome.stream(STREAM).is_empty());
    let answered: Vec<u16> = sim
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/v1/consumption/executions")
        .map(|r| r.status)
        .collect();
    assert_eq!(answered, [404], "asked once, not retried");
    let said = outcome.logs.iter().filter(|l| l.message.contains("consumption_executions")).count();
    assert_eq!(said, 1, "the run says why the stream is empty: {:?}", outcome.logs);
    assert!(outcome.logs.iter().any(|l| l.message.contains("404") && l.message.contains("user-based")));

    let report = QlikConnector.check(&c).await.unwrap();
    assert!(report.passed(), "{report:#?}");
    assert_eq!(probe(&report), CheckStatus::Ok, "a 404 here is no failure: {report:#?}");
}

/// The status of `check`'s probe of the stream.
fn probe(report: &connector_api::CheckReport) -> CheckStatus {
    let step = report.steps.iter().find(|s| s.name.starts_with("stream access") && s.name.contains(STREAM));
    step.unwrap_or_else(|| panic!("no probe of {STREAM}: {report:#?}")).status
}

//! `check` names the tenant's subscription kind, inferred from `licenses/overview` and
//! said to be inferred; a capacity tenant's licence allotment lands like any other.

mod qlik_support;

use connector_api::{CheckReport, CheckStatus, CheckStep, Connector, State};
use qlik_connector::{QlikConnector, check};
use qlik_support::{config, read};
use serde_json::json;
use tests::qlik_sim::{SimConfig, Simulator, Subscription};

fn subscription_step(report: &CheckReport) -> &CheckStep {
    report.steps.iter().find(|s| s.name == check::STEP_SUBSCRIPTION).unwrap_or_else(|| panic!("{report:#?}"))
}

async fn tenant(subscription: Subscription) -> Simulator {
    Simulator::start(SimConfig { subscription, ..SimConfig::small() }).await.unwrap()
}

#[tokio::test]
async fn a_user_based_tenant_is_reported_as_such() {
    let sim = tenant(Subscription::UserBased).await;
    let report = QlikConnector.check(&config(&sim, &sim.keys().admin, json!({}))).await.unwrap();
    let step = subscription_step(&report);
    assert_eq!(step.status, CheckStatus::Ok);
    assert!(
        step.message.starts_with(
            "user-based (inferred from the professional, analyzer, analyzer_time allotments in licenses/overview"
        ),
        "{}",
        step.message
    );
    assert!(step.message.contains("Qlik's API names no subscription kind"), "{}", step.message);
}

#[tokio::test]
async fn a_capacity_tenant_is_reported_as_such_and_its_allotment_lands() {
    let sim = tenant(Subscription::CapacityBased).await;
    let c = config(&sim, &sim.keys().admin, json!({}));
    let report = QlikConnector.check(&c).await.unwrap();
    assert_eq!(report.worst(), CheckStatus::Ok, "{report:#?}");
    let step = subscription_step(&report);
    assert!(
        step.message.starts_with("capacity-based (inferred from the fullUser allotment in licenses/overview"),
        "{}",
        step.message
    );

    let outcome = read(&c, Some(&["license_allotments"]), &State::default(), false).await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    let names: Vec<&str> =
        outcome.records["license_allotments"].iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, ["fullUser"]);
}

/// A key whose user is no Tenant Admin cannot read `licenses/overview`: the kind is
/// unknown, said with the fix, and the check still passes.
#[tokio::test]
async fn a_non_admin_key_cannot_tell_the_kind() {
    let sim = tenant(Subscription::CapacityBased).await;
    let report = QlikConnector.check(&config(&sim, &sim.keys().non_admin, json!({}))).await.unwrap();
    let step = subscription_step(&report);
    assert_eq!(step.status, CheckStatus::Warning);
    assert!(step.message.starts_with("Unknown: the key cannot read licenses/overview"), "{}", step.message);
    assert!(report.passed(), "{report:#?}");
}

//! Faults: the Qlik connector either lands exactly the ground truth or fails with a
//! clear error, never with gaps or duplicates.

mod qlik_support;

use connector_api::{ErrorKind, State, StreamEvent};
use qlik_support::{assert_exact, config, read};
use serde_json::json;
use tests::qlik_sim::{FOREIGN_HOST, Faults, SimConfig, Simulator};

fn retries(outcome: &qlik_support::Outcome) -> usize {
    outcome.statuses.iter().filter(|s| matches!(s.event, StreamEvent::Retrying { .. })).count()
}

#[tokio::test]
async fn bursts_of_5xx_drops_and_broken_bodies_end_in_exact_data() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    sim.set_faults(Faults {
        error_5xx_rate: 0.15,
        drop_connection_rate: 0.1,
        truncate_body_rate: 0.1,
        malformed_json_rate: 0.1,
        longest_burst: Some(5),
        ..Default::default()
    });
    let streams = [
        "users",
        "user_roles",
        "license_assignments",
        "license_consumption",
        "spaces",
        "space_assignments",
        "apps",
    ];
    let outcome = read(
        &config(&sim, &sim.keys().admin, json!({"page_size": 50})),
        Some(&streams),
        &State::default(),
        false,
    )
    .await;
    assert_exact(&sim, &outcome, &streams, "mixed faults");
    assert!(retries(&outcome) > 5, "faults were retried: {}", retries(&outcome));
    let failed: Vec<_> = sim.requests().into_iter().filter(|r| r.status >= 500 || r.status == 0).collect();
    assert!(!failed.is_empty(), "the simulator injected faults");
}

#[tokio::test]
async fn a_429_storm_is_waited_out() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    sim.set_faults(Faults { error_429_rate: 0.25, longest_burst: Some(5), ..Default::default() });
    let streams = [
        "groups",
        "roles",
        "api_keys",
        "license_overview",
        "license_allotments",
        "tenant",
        "license_settings",
        "api_key_policy",
        "oauth_clients",
    ];
    let outcome = read(
        &config(&sim, &sim.keys().admin, json!({"page_size": 5})),
        Some(&streams),
        &State::default(),
        false,
    )
    .await;
    assert_exact(&sim, &outcome, &streams, "429 storm");
    let throttled = sim.requests().iter().filter(|r| r.status == 429).count();
    assert!(throttled > 0);
    assert_eq!(retries(&outcome), throttled, "every 429 was retried once");
}

#[tokio::test]
async fn persistent_server_errors_fail_clearly_naming_the_endpoint() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    sim.set_faults(Faults { error_5xx_rate: 1.0, ..Default::default() });
    let outcome =
        read(&config(&sim, &sim.keys().admin, json!({})), Some(&["roles"]), &State::default(), false).await;
    let err = outcome.error.as_ref().expect("the read fails");
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert_eq!(err.context_value("endpoint"), Some("GET /api/v1/roles"));
    assert!(err.message().contains("failed after 8 attempts"), "{err}");
    assert!(err.message().contains("last: HTTP 50"), "{err}");
    assert_eq!(err.hint(), Some(qlik_connector::remediation::SOURCE_UNAVAILABLE));
    assert!(outcome.stream("roles").is_empty(), "no partial data was emitted");
    assert!(outcome.statuses.iter().any(|s| matches!(s.event, StreamEvent::Failed { .. })));
}

#[tokio::test]
async fn a_looping_cursor_stops_with_an_error() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    sim.set_faults(Faults { looping_next: true, ..Default::default() });
    let outcome =
        read(&config(&sim, &sim.keys().admin, json!({})), Some(&["users"]), &State::default(), false).await;
    let err = outcome.error.expect("the read fails");
    assert_eq!(err.kind(), ErrorKind::Source);
    assert!(err.message().contains("already returned"), "{err}");
    let user_requests = sim.requests().iter().filter(|r| r.path == "/api/v1/users").count();
    assert!(user_requests <= 2, "stopped at once, not looping: {user_requests}");
}

#[tokio::test]
async fn foreign_next_links_are_rebased_and_the_key_stays_home() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    sim.set_faults(Faults { foreign_host_next: true, ..Default::default() });
    let streams = ["users", "apps", "license_consumption", "space_assignments"];
    let outcome =
        read(&config(&sim, &sim.keys().admin, json!({})), Some(&streams), &State::default(), false).await;
    assert_exact(&sim, &outcome, &streams, "foreign next links");
    let home = sim.local_addr().to_string();
    for r in sim.requests() {
        assert_eq!(r.host, home, "{} {}", r.path, r.query);
        assert_ne!(r.host, FOREIGN_HOST);
    }
}

//! Key kinds: each gets the right error kind and the remediation text an operator can
//! act on, in `check` and in `read`.

mod qlik_support;

use std::collections::BTreeSet;

use connector_api::{CheckStatus, Connector, ErrorKind, State};
use qlik_connector::{QlikConnector, check, remediation};
use qlik_support::{config, read};
use serde_json::json;
use tests::qlik_sim::{SimConfig, Simulator};

fn step<'a>(report: &'a connector_api::CheckReport, name: &str) -> &'a connector_api::CheckStep {
    report.steps.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no step {name}: {report:?}"))
}

#[tokio::test]
async fn admin_key_passes_every_step() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let report = QlikConnector.check(&config(&sim, &sim.keys().admin, json!({}))).await.unwrap();
    assert_eq!(report.worst(), CheckStatus::Ok, "{report:#?}");
    let names: Vec<&str> = report.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        &names[..8],
        [
            check::STEP_URL,
            check::STEP_AUTH,
            check::STEP_EXPIRY,
            check::STEP_REACH,
            check::STEP_KEY,
            check::STEP_RIGHTS,
            check::STEP_TENANT,
            check::STEP_SUBSCRIPTION
        ]
    );
    assert_eq!(names.last(), Some(&check::STEP_VERSION), "the API version is checked last");
    let probed: Vec<&str> = names[8..names.len() - 1]
        .iter()
        .map(|n| n.strip_prefix("stream access: ").unwrap_or_else(|| panic!("not a probe step: {n}")))
        .flat_map(|streams| streams.split(", "))
        .collect();
    assert_eq!(probed, qlik_connector::streams::names(), "every stream probed once, in catalog order");
    assert_eq!(step(&report, check::STEP_AUTH).message, "API key");
    assert!(step(&report, check::STEP_RIGHTS).message.contains("is a Tenant Admin"));
    assert!(step(&report, check::STEP_TENANT).message.contains(sim.tenant_id()));
}

/// A config that reaches the tenant through one of its aliases is told so, with the
/// tenant's own hostname: the hub keys rows by the host in `tenant_url`, so two names for
/// one tenant would count its seats twice. Its own name gets no note.
#[tokio::test]
async fn a_tenant_reached_through_an_alias_is_named_by_its_own_hostname() {
    let own = "acme.eu.qlikcloud.com";
    let sim = Simulator::start(SimConfig { hostname: Some(own.into()), ..SimConfig::small() }).await.unwrap();
    let report = QlikConnector.check(&config(&sim, &sim.keys().admin, json!({}))).await.unwrap();
    assert_eq!(report.worst(), CheckStatus::Ok, "{report:#?}");
    let reached = sim.base_url().trim_start_matches("http://").to_string();
    let message = &step(&report, check::STEP_TENANT).message;
    assert!(
        message.contains(&format!("reached through its alias {reached} (its own hostname is {own})")),
        "{message}"
    );
    let hint = step(&report, check::STEP_TENANT).hint.as_deref().unwrap_or_default();
    assert!(hint.contains("same tenant_url in every config"), "{hint}");

    let plain = Simulator::start(SimConfig::small()).await.unwrap();
    let report = QlikConnector.check(&config(&plain, &plain.keys().admin, json!({}))).await.unwrap();
    let message = &step(&report, check::STEP_TENANT).message;
    assert!(message.ends_with(&format!("({})", plain.tenant_id())), "no note: {message}");
}

#[tokio::test]
async fn expired_key_fails_before_any_request() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let c = config(&sim, &sim.keys().expired, json!({}));
    let report = QlikConnector.check(&c).await.unwrap();
    let s = step(&report, check::STEP_EXPIRY);
    assert_eq!(s.status, CheckStatus::Failed);
    assert!(s.message.contains("expired on 20"), "{}", s.message);
    assert_eq!(s.hint.as_deref(), Some(remediation::KEY_EXPIRED));
    assert_eq!(step(&report, check::STEP_KEY).status, CheckStatus::Skipped);
    let outcome = read(&c, None, &State::default(), false).await;
    let err = outcome.error.expect("read refuses");
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert_eq!(err.hint(), Some(remediation::KEY_EXPIRED));
    assert!(sim.requests().is_empty(), "nothing was sent: {:?}", sim.requests());
}

#[tokio::test]
async fn expiring_key_is_a_warning() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let c = config(&sim, &sim.keys().expiring_soon, json!({}));
    let report = QlikConnector.check(&c).await.unwrap();
    let s = step(&report, check::STEP_EXPIRY);
    assert_eq!(s.status, CheckStatus::Warning);
    assert_eq!(s.hint.as_deref(), Some(remediation::KEY_EXPIRING_SOON));
    assert!(report.passed());
    let outcome = read(&c, Some(&["roles"]), &State::default(), false).await;
    assert!(outcome.error.is_none());
}

#[tokio::test]
async fn rejected_keys_say_how_to_get_a_working_one() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    for key in [&sim.keys().revoked, &sim.keys().legacy_developer] {
        let c = config(&sim, key, json!({}));
        let report = QlikConnector.check(&c).await.unwrap();
        let s = step(&report, check::STEP_KEY);
        assert_eq!(s.status, CheckStatus::Failed);
        assert!(s.message.contains("HTTP 401"), "{}", s.message);
        assert_eq!(s.hint.as_deref(), Some(remediation::KEY_REJECTED));
        assert_eq!(step(&report, check::STEP_TENANT).status, CheckStatus::Skipped);
        let err = read(&c, Some(&["users"]), &State::default(), false).await.error.expect("read fails");
        assert_eq!(err.kind(), ErrorKind::Auth);
        let text = err.to_string();
        for needle in [
            "Manage API keys",
            "Profile settings > API keys > Generate new key",
            "26 January 2026",
            "Enable API keys",
        ] {
            assert!(text.contains(needle), "{needle}: {text}");
        }
    }
}

#[tokio::test]
async fn keys_switched_off_on_an_old_tenant_get_auth_errors() {
    let mut sim_config = SimConfig::small();
    sim_config.api_keys_enabled = false;
    let sim = Simulator::start(sim_config).await.unwrap();
    let err = read(&config(&sim, &sim.keys().admin, json!({})), Some(&["users"]), &State::default(), false)
        .await
        .error
        .expect("read fails");
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert_eq!(err.hint(), Some(remediation::KEY_REJECTED));
}

#[tokio::test]
async fn non_admin_key_loses_licence_streams_with_a_warning() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let c = config(&sim, &sim.keys().non_admin, json!({}));
    let report = QlikConnector.check(&c).await.unwrap();
    // The refused streams are grouped by their fix: one line for the licence endpoints.
    let s = step(
        &report,
        "stream access: license_overview, license_allotments, license_assignments, license_consumption, license_settings",
    );
    assert_eq!(s.status, CheckStatus::Warning, "{report:#?}");
    assert_eq!(s.message, "refused (HTTP 403): these streams will fail");
    assert_eq!(s.hint.as_deref(), Some(remediation::LICENCE_NEEDS_TENANT_ADMIN));
    let readable =
        report.steps.iter().find(|s| s.status == CheckStatus::Ok && s.name.starts_with("stream access: "));
    assert!(readable.unwrap().name.contains("users, user_roles, user_groups"), "{report:#?}");
    assert!(report.passed(), "warnings only");

    // What check warns about is exactly what a read then loses.
    let warned: BTreeSet<&str> = report
        .steps
        .iter()
        .filter(|s| s.status == CheckStatus::Warning)
        .filter_map(|s| s.name.strip_prefix("stream access: "))
        .flat_map(|streams| streams.split(", "))
        .collect();
    let outcome = read(&c, None, &State::default(), false).await;
    let failed: BTreeSet<&str> = outcome
        .statuses
        .iter()
        .filter(|s| s.event.error().is_some_and(|e| e.kind() == ErrorKind::Permission))
        .map(|s| s.stream.as_str())
        .collect();
    assert_eq!(warned, failed);
    let err =
        read(&c, Some(&["license_overview"]), &State::default(), false).await.error.expect("read fails");
    assert_eq!(err.kind(), ErrorKind::Permission);
    assert_eq!(err.hint(), Some(remediation::LICENCE_NEEDS_TENANT_ADMIN));
}

#[tokio::test]
async fn wrong_tenant_url_and_plain_http_are_config_failures() {
    let report = QlikConnector
        .check(&json!({"tenant_url": "http://acme.eu.qlikcloud.com", "api_key": "k"}))
        .await
        .unwrap();
    assert_eq!(step(&report, check::STEP_URL).status, CheckStatus::Failed);
    assert!(step(&report, check::STEP_URL).message.contains("tenant_url"));
    let report =
        QlikConnector.check(&json!({"tenant_url": "http://127.0.0.1:1", "api_key": "k"})).await.unwrap();
    let s = step(&report, check::STEP_REACH);
    assert_eq!(s.status, CheckStatus::Failed);
    assert_eq!(s.hint.as_deref(), Some(remediation::TENANT_UNREACHABLE), "{}", s.message);
}

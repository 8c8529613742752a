//! The connector against what Qlik Cloud really does (issue 13): position-only licence
//! links, renames mid-listing, a space deleted mid-run, a non-admin key, assignment shape
//! variants, every licence status field, and a 20,000-user tenant synced twice in a row.

mod qlik_support;

use std::collections::BTreeMap;
use std::time::Instant;

use connector_api::{Access, CheckStatus, Connector, ErrorKind, LogLevel, State, StreamEvent};
use qlik_connector::{QlikConnector, check, remediation};
use qlik_support::{Outcome, assert_exact, config, digest, read};
use serde_json::{Value, json};
use tests::qlik_sim::{SimConfig, Simulator, Situations, UNTYPED, non_admin};

/// The streams read in full every sync, from the catalog, so a new stream is checked
/// without a list to keep in step.
fn full_refresh_streams() -> Vec<String> {
    qlik_support::catalog()
        .streams
        .into_iter()
        .filter(|s| s.default_sync_mode() == connector_api::SyncMode::FullRefresh)
        .map(|s| s.name)
        .collect()
}

fn with(situations: Situations) -> SimConfig {
    SimConfig { situations, ..SimConfig::small() }
}

fn failure(outcome: &Outcome, stream: &str) -> Option<connector_api::Error> {
    outcome.statuses.iter().filter(|s| s.stream == stream).find_map(|s| s.event.error())
}

#[tokio::test]
async fn every_request_after_a_position_only_link_keeps_its_filter_sort_and_orphans() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let c = config(
        &sim,
        &sim.keys().admin,
        json!({"consumption_start": "2026-05-01", "include_orphans": true, "page_size": 5}),
    );
    let outcome =
        read(&c, Some(&["license_consumption", "license_assignments"]), &State::default(), false).await;
    assert_exact(&sim, &outcome, &["license_assignments"], "orphans marked across 44 pages");
    let consumption = outcome.stream("license_consumption");
    assert!(consumption.iter().all(|e| e["end_time"].as_str().unwrap() >= "2026-05-01"));
    let requests = sim.requests();
    let listed = |path: &str, needle: &str| {
        let of_path: Vec<_> = requests.iter().filter(|r| r.path == path).collect();
        (of_path.len(), of_path.iter().filter(|r| r.query.contains(needle)).count())
    };
    let (pages, filtered) = listed("/api/v1/licenses/consumption", "filter=endTime+ge");
    assert_eq!(filtered, pages, "every consumption request asked for the filter");
    let followed: Vec<_> = requests
        .iter()
        .filter(|r| r.path == "/api/v1/licenses/consumption" && r.query.contains("page="))
        .collect();
    assert!(followed.len() >= consumption.len() / 5 / 2, "{} pages followed", followed.len());
    assert!(
        followed.iter().all(|r| r.query.contains("sort=%2BendTime") && r.query.contains("filter=endTime+ge")),
        "every page after a position-only link kept sort and filter: {followed:?}"
    );
    let orphans = listed("/api/v1/licenses/assignments", "orphans=true");
    assert_eq!(orphans, (2 + 44, 2), "7 orphans, then 217 assignments, at 5 per page");
}

#[tokio::test]
async fn users_are_read_by_id_so_renames_move_nobody() {
    let sim = Simulator::start(with(Situations { rename_during_users_listing: true, ..Default::default() }))
        .await
        .unwrap();
    let c = config(&sim, &sim.keys().admin, json!({"page_size": 40}));
    let outcome = read(&c, Some(&["users", "user_roles", "user_groups"]), &State::default(), false).await;
    assert_exact(&sim, &outcome, &["users", "user_roles", "user_groups"], "renames mid-listing");
    let users: Vec<_> = sim.requests().into_iter().filter(|r| r.path == "/api/v1/users").collect();
    // Each end reads its half and the page where it meets the other; the page after it may
    // already be in flight.
    assert!((7..=10).contains(&users.len()), "250 users at 40 per page, from both ends: {}", users.len());
    assert!(
        users.iter().all(|r| r.query.contains("sort=%2Bid") || r.query.contains("sort=-id")),
        "{users:?}"
    );
}

#[tokio::test]
async fn a_space_deleted_mid_run_is_skipped_with_a_warning() {
    let sim = Simulator::start(with(Situations { space_deleted_mid_run: true, ..Default::default() }))
        .await
        .unwrap();
    let c = config(&sim, &sim.keys().admin, json!({}));
    let outcome = read(&c, Some(&["spaces", "space_assignments"]), &State::default(), false).await;
    assert_exact(&sim, &outcome, &["spaces", "space_assignments"], "one space vanished");
    let warnings: Vec<_> = outcome.logs.iter().filter(|l| l.level == LogLevel::Warn).collect();
    assert_eq!(warnings.len(), 1, "{:?}", outcome.logs);
    let gone = sim.requests().into_iter().find(|r| r.status == 404).expect("a 404 was answered");
    let id = gone.path.trim_start_matches("/api/v1/spaces/").trim_end_matches("/assignments");
    assert!(warnings[0].message.contains(id), "{}", warnings[0].message);
    assert!(warnings[0].message.contains("Space not found or access denied"), "{}", warnings[0].message);
}

#[tokio::test]
async fn a_non_admin_key_is_flagged_by_check_and_reads_what_its_user_sees() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let c = config(&sim, &sim.keys().non_admin, json!({}));
    let report = QlikConnector.check(&c).await.unwrap();
    let rights = report.steps.iter().find(|s| s.name == check::STEP_RIGHTS).unwrap();
    assert_eq!(rights.status, CheckStatus::Warning, "{report:#?}");
    for named in [
        "not a Tenant Admin",
        "Refused: license_overview, license_allotments, license_assignments, license_consumption, user_sessions, license_settings, api_key_policy, oauth_clients, consumption_executions.",
        "Partial: tenant (licence columns null), spaces (only those the user can access), space_assignments (only of spaces the user can access), apps (only those the user can access), api_keys (only the user's own keys).",
    ] {
        assert!(rights.message.contains(named), "{named}: {}", rights.message);
    }
    assert_eq!(rights.hint.as_deref(), Some(remediation::LICENCE_NEEDS_TENANT_ADMIN));
    let only_licences =
        config(&sim, &sim.keys().non_admin, json!({"streams": ["users", "license_overview"]}));
    let report = QlikConnector.check(&only_licences).await.unwrap();
    let rights = report.steps.iter().find(|s| s.name == check::STEP_RIGHTS).unwrap();
    assert!(rights.message.contains("Refused: license_overview.") && !rights.message.contains("Partial"));

    // What each stream declares a non-admin key may read is what the simulator serves it:
    // refused streams fail, partial ones land the non-admin's share, the rest land whole.
    let outcome = read(&c, None, &State::default(), false).await;
    let truth = sim.ground_truth();
    for def in qlik_connector::streams::all() {
        let s = def.name;
        match def.access {
            Access::AdminOnly => {
                assert_eq!(failure(&outcome, s).map(|e| e.kind()), Some(ErrorKind::Permission), "{s}");
            }
            Access::Partial(_) if s == "tenant" => {
                assert_eq!(&digest(s, outcome.stream(s)), truth.stream(s), "{s}: every row, some columns");
            }
            Access::Partial(_) => {
                assert_eq!(&digest(s, outcome.stream(s)), truth.stream(&non_admin(s)), "{s}");
                assert!(failure(&outcome, s).is_none(), "{s}");
            }
            Access::Everyone => assert_eq!(&digest(s, outcome.stream(s)), truth.stream(s), "{s}"),
        }
    }
    assert_eq!(outcome.stream("tenant")[0]["license_status"], Value::Null);
}

#[tokio::test]
async fn assignment_rows_of_every_shape_land_once_with_their_holder() {
    let sim = Simulator::start(with(Situations { assignment_shape_variants: true, ..Default::default() }))
        .await
        .unwrap();
    let c = config(&sim, &sim.keys().admin, json!({"include_orphans": true}));
    let outcome = read(&c, Some(&["license_assignments"]), &State::default(), false).await;
    assert_exact(&sim, &outcome, &["license_assignments"], "shape variants");
    let rows = outcome.stream("license_assignments");
    let untyped: Vec<_> = rows.iter().filter(|a| a["type"] == UNTYPED).collect();
    assert_eq!(untyped.len(), 24);
    assert_eq!(untyped.iter().filter(|a| a["orphan"] == true).count(), 1, "an untyped orphan is still found");
    let named: Vec<_> = rows.iter().filter(|a| a["user_id"].is_string()).collect();
    assert_eq!(named.len(), 53);
    assert!(named.iter().all(|a| a["name"].is_string() && a["orphan"] == false));
}

/// Reading consumption in time slices relies on a compound `filter`, and reading users from
/// both ends on `sort`: neither is promised by Qlik's pages. A tenant that refuses the one and
/// ignores the other is read the documented way, with a warning each, and loses nothing.
#[tokio::test]
async fn a_tenant_that_refuses_compound_filters_and_ignores_sort_lands_every_stream_exactly() {
    let sim = Simulator::start(with(Situations {
        compound_filters_refused: true,
        users_sort_ignored: true,
        ..Default::default()
    }))
    .await
    .unwrap();
    let c = config(&sim, &sim.keys().admin, json!({"include_orphans": true, "max_concurrency": 4}));
    let first = read(&c, None, &State::default(), false).await;
    let failed: Vec<_> = first.statuses.iter().filter(|s| s.event.error().is_some()).collect();
    assert!(failed.is_empty(), "no stream fails: {failed:?}");
    let full_refresh = full_refresh_streams();
    let full_refresh: Vec<&str> = full_refresh.iter().map(String::as_str).collect();
    assert_exact(&sim, &first, &full_refresh, "sort ignored");
    assert_exact(&sim, &first, &["license_consumption"], "compound filter refused");
    let warnings: Vec<&str> =
        first.logs.iter().filter(|l| l.level == LogLevel::Warn).map(|l| l.message.as_str()).collect();
    let refused = warnings.iter().filter(|w| w.contains("refused the compound filter")).count();
    let unsorted = warnings.iter().filter(|w| w.contains("(sort=+id)")).count();
    assert_eq!((refused, unsorted), (1, 1), "one warning each: {warnings:#?}");
    let consumption_400s =
        sim.requests().iter().filter(|r| r.path == "/api/v1/licenses/consumption" && r.status == 400).count();
    assert_eq!(consumption_400s, 1, "one probe refused, no slice sent");

    let second = read(&c, None, &first.final_state(), false).await;
    assert_exact(&sim, &second, &full_refresh, "second sync");
    let hub = upserted([first.stream("license_consumption"), second.stream("license_consumption")]);
    assert_eq!(&digest("license_consumption", &hub), sim.ground_truth().stream("license_consumption"));
}

/// A server that sorts users by id only one way: the listing read downwards is out of
/// order from its first page, is dropped before it claims anyone, and the upward listing
/// reads every user once.
#[tokio::test]
async fn a_descending_listing_out_of_order_claims_nobody() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let c = config(&sim, &sim.keys().admin, json!({"max_concurrency": 4}));
    let plain = read(&c, Some(&["users"]), &State::default(), false).await;
    assert_exact(&sim, &plain, &["users"], "sorted both ways");
    assert!(plain.logs.iter().all(|l| l.level != LogLevel::Warn), "{:?}", plain.logs);
    let downwards =
        sim.requests().iter().filter(|r| r.path == "/api/v1/users" && r.query.contains("sort=-id")).count();
    assert!(downwards >= 1, "the listing was read from both ends");
}

#[tokio::test]
async fn the_tenant_keeps_every_licence_status_field() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let outcome =
        read(&config(&sim, &sim.keys().admin, json!({})), Some(&["tenant"]), &State::default(), false).await;
    let tenant = &outcome.stream("tenant")[0];
    assert_eq!(
        (&tenant["license_status"], &tenant["license_deactivated"], &tenant["license_extension_status"]),
        (&json!("Ok"), &json!(false), &json!("none"))
    );
    assert!(tenant["_extra"].get("licenseStatus").is_none(), "every field has a column");
}

#[test]
fn the_rate_limit_and_orphans_are_explained_as_qlik_defines_them() {
    let docs = include_str!("../../qlik-connector/docs.md");
    for text in [remediation::RATE_LIMITED, docs] {
        assert!(text.contains("per user, per tenant, over 5 minutes"), "{}", &text[..80]);
    }
    assert!(docs.contains("whose subject has no user on **this**\n  tenant"));
    assert!(!docs.contains("licences you may be\n  paying for that nobody can use"));
}

/// What a destination holds after upserting `batches` by `id`.
fn upserted<'a>(batches: impl IntoIterator<Item = &'a [Value]>) -> Vec<Value> {
    let mut by_id = BTreeMap::new();
    for record in batches.into_iter().flatten() {
        by_id.insert(record["id"].as_str().unwrap().to_string(), record.clone());
    }
    by_id.into_values().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_20000_user_tenant_syncs_exactly_twice_in_a_row() {
    let sim = Simulator::start(SimConfig {
        users: 20_000,
        license_assignments: 15_000,
        rate_limit_per_minute: Some(1_000),
        ..SimConfig::demo()
    })
    .await
    .unwrap();
    let c = config(&sim, &sim.keys().admin, json!({"include_orphans": true}));
    let started = Instant::now();
    let first = read(&c, None, &State::default(), false).await;
    let full_refresh = full_refresh_streams();
    let full_refresh: Vec<&str> = full_refresh.iter().map(String::as_str).collect();
    assert_exact(&sim, &first, &full_refresh, "first sync");
    assert_exact(&sim, &first, &["license_consumption"], "first sync, before the late events");
    let first_took = started.elapsed();

    let started = Instant::now();
    let second = read(&c, None, &first.final_state(), false).await;
    assert_exact(&sim, &second, &full_refresh, "second sync");
    let hub = upserted([first.stream("license_consumption"), second.stream("license_consumption")]);
    assert_eq!(&digest("license_consumption", &hub), sim.ground_truth().stream("license_consumption"));
    assert!(
        sim.ground_truth().stream("license_consumption").count
            > sim.ground_truth().stream("license_consumption_on_time").count,
        "the second sync picked up the events recorded late"
    );
    let requests = sim.requests();
    assert_eq!(requests.iter().filter(|r| r.status == 429).count(), 0, "within Qlik's 5,000 per 5 minutes");
    assert!(requests.len() < 5_000, "{} requests", requests.len());
    assert!(second.statuses.iter().all(|s| !matches!(s.event, StreamEvent::Failed { .. })));
    println!(
        "20,000 users: first sync {first_took:.1?}, second {:.1?}, {} requests in all",
        started.elapsed(),
        requests.len()
    );
}

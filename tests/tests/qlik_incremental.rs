//! Incremental `license_consumption`: checkpoints after each page, and a rerun from
//! saved state fetches nothing already delivered.

mod qlik_support;

use std::collections::HashSet;

use connector_api::State;
use qlik_support::{assert_exact, config, digest, read};
use serde_json::json;
use tests::qlik_sim::{SimConfig, Simulator};

const STREAM: &[&str] = &["license_consumption"];

#[tokio::test]
async fn rerun_from_saved_state_fetches_nothing_new() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let c = config(&sim, &sim.keys().admin, json!({"page_size": 150}));
    let first = read(&c, Some(STREAM), &State::default(), false).await;
    assert_exact(&sim, &first, STREAM, "first sync");
    let records = first.stream("license_consumption");
    assert_eq!(first.states.len(), records.len().div_ceil(150), "one checkpoint per page");
    for (cp, before) in &first.states {
        assert_eq!(
            cp.value["end_time"],
            records[before - 1]["end_time"],
            "a checkpoint covers the records before it"
        );
    }
    sim.clear_requests();
    let second = read(&c, Some(STREAM), &first.final_state(), false).await;
    assert!(second.error.is_none());
    assert!(second.stream("license_consumption").is_empty());
    let requests = sim.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(requests[0].query.contains("filter=endTime+gt"), "{}", requests[0].query);
}

#[tokio::test]
async fn resume_from_a_mid_run_checkpoint_completes_without_duplicates() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let c = config(&sim, &sim.keys().admin, json!({"page_size": 100}));
    let first = read(&c, Some(STREAM), &State::default(), false).await;
    let (cp, before) = first.states[3].clone();
    let mut state = State::default();
    state.set("license_consumption", cp.value);
    let resumed = read(&c, Some(STREAM), &state, false).await;
    let mut combined: Vec<_> = first.stream("license_consumption")[..before].to_vec();
    combined.extend_from_slice(resumed.stream("license_consumption"));
    assert_eq!(&digest("license_consumption", &combined), sim.ground_truth().stream("license_consumption"));
    let ids: HashSet<_> = combined.iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), combined.len());
}

#[tokio::test]
async fn full_refresh_ignores_state_and_start_bounds_the_first_sync() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let c = config(&sim, &sim.keys().admin, json!({}));
    let first = read(&c, Some(STREAM), &State::default(), false).await;
    let refreshed = read(&c, Some(STREAM), &first.final_state(), true).await;
    assert_exact(&sim, &refreshed, STREAM, "full refresh");

    let records = first.stream("license_consumption");
    let middle = records[records.len() / 2]["end_time"].as_str().unwrap().to_string();
    let bounded = read(
        &config(&sim, &sim.keys().admin, json!({"consumption_start": middle})),
        Some(STREAM),
        &State::default(),
        false,
    )
    .await;
    let got = bounded.stream("license_consumption");
    let expected = records.iter().filter(|r| r["end_time"].as_str().unwrap() >= middle.as_str()).count();
    assert_eq!(got.len(), expected);
}

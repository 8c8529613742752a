//! Incremental `license_consumption`: checkpoints after each page, and a rerun or a resume
//! re-reads the look-back window before its cursor, so events that share an `endTime` across
//! a page break and events Qlik records late all land, each once after upserting by `id`.
//!
//! A page-level checkpoint is a property of one ascending listing, so the tests of it read
//! with `max_concurrency = 1`; by default the connector reads concurrent `endTime` slices,
//! whose checkpoints only ever cover the slices read to their end before it.

mod qlik_support;

use std::collections::BTreeMap;

use connector_api::State;
use qlik_support::{assert_exact, config, digest, read};
use serde_json::{Value, json};
use tests::digest::KeyDigest;
use tests::qlik_sim::{SimConfig, Simulator};

const STREAM: &[&str] = &["license_consumption"];

/// What a destination holds after upserting `batches` in order, keyed by `id`.
fn upserted<'a>(batches: impl IntoIterator<Item = &'a [Value]>) -> Vec<Value> {
    let mut by_id = BTreeMap::new();
    for record in batches.into_iter().flatten() {
        by_id.insert(record["id"].as_str().unwrap().to_string(), record.clone());
    }
    by_id.into_values().collect()
}

fn held(records: &[Value]) -> KeyDigest {
    digest("license_consumption", records)
}

#[tokio::test]
async fn a_rerun_reads_the_look_back_window_and_the_late_events() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let c = config(&sim, &sim.keys().admin, json!({"page_size": 150, "max_concurrency": 1}));
    let first = read(&c, Some(STREAM), &State::default(), false).await;
    assert_exact(&sim, &first, STREAM, "first sync");
    let on_time = sim.ground_truth().stream("license_consumption_on_time").clone();
    assert_eq!(held(first.stream("license_consumption")), on_time, "the late events are not listed yet");
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
    assert!(second.error.is_none(), "{:?}", second.error);
    let requests = sim.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let cursor =
        first.final_state().get("license_consumption").unwrap()["end_time"].as_str().unwrap().to_string();
    let from = time::OffsetDateTime::parse(&cursor, &time::format_description::well_known::Rfc3339).unwrap()
        - time::Duration::hours(48);
    let from = from.format(&time::format_description::well_known::Rfc3339).unwrap();
    let filter: String =
        url::form_urlencoded::byte_serialize(format!("endTime ge \"{from}\"").as_bytes()).collect();
    assert!(requests[0].query.contains(&filter), "{} lacks {filter}", requests[0].query);

    let again = second.stream("license_consumption");
    let window = records.iter().filter(|r| r["end_time"].as_str().unwrap() >= from.as_str()).count();
    let late = sim.ground_truth().stream("license_consumption").count - on_time.count;
    assert!(late >= 1, "the small tenant records some events late");
    assert_eq!(again.len() as u64, window as u64 + late, "the window again, plus the late events");
    let hub = upserted([records, again]);
    assert_eq!(&held(&hub), sim.ground_truth().stream("license_consumption"), "every event, once");
    assert_eq!(second.final_state(), first.final_state(), "the cursor does not move back");
}

#[tokio::test]
async fn without_a_look_back_the_late_events_are_lost() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let c = config(&sim, &sim.keys().admin, json!({"consumption_lookback": "0s"}));
    let first = read(&c, Some(STREAM), &State::default(), false).await;
    let second = read(&c, Some(STREAM), &first.final_state(), false).await;
    let hub = upserted([first.stream("license_consumption"), second.stream("license_consumption")]);
    assert_eq!(&held(&hub), sim.ground_truth().stream("license_consumption_on_time"));
    assert_ne!(&held(&hub), sim.ground_truth().stream("license_consumption"), "the late events never land");
}

#[tokio::test]
async fn resuming_from_any_checkpoint_loses_no_tied_event() {
    for max_concurrency in [1, 8] {
        let sim = Simulator::start(SimConfig::small()).await.unwrap();
        let c =
            config(&sim, &sim.keys().admin, json!({"page_size": 100, "max_concurrency": max_concurrency}));
        let first = read(&c, Some(STREAM), &State::default(), false).await;
        let records = first.stream("license_consumption");
        if max_concurrency == 1 {
            let ties_at_breaks = first
                .states
                .iter()
                .filter(|(_, before)| {
                    *before < records.len() && records[*before]["end_time"] == records[before - 1]["end_time"]
                })
                .count();
            assert!(ties_at_breaks >= 1, "some page break splits events that end in the same second");
        }
        assert!(first.states.len() >= 3, "{max_concurrency}: checkpoints along the way");
        for (cp, before) in &first.states {
            let mut state = State::default();
            state.set("license_consumption", cp.value.clone());
            let resumed = read(&c, Some(STREAM), &state, false).await;
            assert!(resumed.error.is_none(), "{:?}", resumed.error);
            let hub = upserted([&records[..*before], resumed.stream("license_consumption")]);
            assert_eq!(
                &held(&hub),
                sim.ground_truth().stream("license_consumption"),
                "{max_concurrency} at once: interrupted after {before} events, then resumed"
            );
        }
    }
}

#[tokio::test]
async fn full_refresh_ignores_state_and_start_bounds_the_first_sync() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let c = config(&sim, &sim.keys().admin, json!({}));
    let first = read(&c, Some(STREAM), &State::default(), false).await;
    let refreshed = read(&c, Some(STREAM), &first.final_state(), true).await;
    assert_exact(&sim, &refreshed, STREAM, "full refresh");

    let records = refreshed.stream("license_consumption");
    let middle = records[records.len() / 2]["end_time"].as_str().unwrap().to_string();
    let bounded = read(
        &config(&sim, &sim.keys().admin, json!({"consumption_start": middle, "page_size": 7})),
        Some(STREAM),
        &State::default(),
        false,
    )
    .await;
    let expected: Vec<Value> =
        records.iter().filter(|r| r["end_time"].as_str().unwrap() >= middle.as_str()).cloned().collect();
    assert_eq!(
        held(bounded.stream("license_consumption")),
        held(&expected),
        "only events from the start, every page"
    );
}

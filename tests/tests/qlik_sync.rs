//! Every stream of the Qlik connector lands exactly the simulator's ground truth, at
//! several page sizes, with users of every status and orphans when asked for.

mod qlik_support;

use connector_api::{State, StreamEvent};
use qlik_connector::streams::names;
use qlik_support::{assert_exact, config, read};
use serde_json::json;
use tests::qlik_sim::{SimConfig, Simulator};

#[tokio::test]
async fn every_stream_matches_ground_truth_at_several_page_sizes() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let all = names();
    for page_size in [None, Some(7), Some(100), Some(1000)] {
        let mut extra = json!({});
        if let Some(p) = page_size {
            extra["page_size"] = json!(p);
        }
        let outcome = read(&config(&sim, &sim.keys().admin, extra), None, &State::default(), false).await;
        assert_exact(&sim, &outcome, &all, &format!("page_size {page_size:?}"));
        for s in &all {
            let completed =
                outcome.statuses.iter().filter(|st| st.stream == *s).find_map(|st| match st.event {
                    StreamEvent::Completed { records } => Some(records),
                    _ => None,
                });
            assert_eq!(completed, Some(outcome.stream(s).len() as u64), "{s} reports its record count");
        }
    }
}

#[tokio::test]
async fn users_of_every_status_are_read_explicitly() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let outcome =
        read(&config(&sim, &sim.keys().admin, json!({})), Some(&["users"]), &State::default(), false).await;
    assert_exact(&sim, &outcome, &["users"], "users");
    let statuses: std::collections::BTreeSet<&str> =
        outcome.stream("users").iter().filter_map(|u| u["status"].as_str()).collect();
    assert_eq!(statuses.len(), 5, "all five statuses: {statuses:?}");
    let listed = sim.requests().into_iter().filter(|r| r.path == "/api/v1/users").collect::<Vec<_>>();
    assert!(!listed.is_empty());
    assert!(
        listed.iter().all(|r| r.query.contains("filter=")),
        "every users request carries the status filter"
    );
}

#[tokio::test]
async fn orphans_are_marked_among_the_listed_assignments() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let truth = sim.ground_truth().clone();
    let stream = "license_assignments";
    let marked = read(
        &config(&sim, &sim.keys().admin, json!({"include_orphans": true, "page_size": 30})),
        Some(&[stream]),
        &State::default(),
        false,
    )
    .await;
    assert_exact(&sim, &marked, &[stream], "include_orphans");
    let rows = marked.stream(stream);
    let orphans: Vec<_> = rows.iter().filter(|a| a["orphan"] == json!(true)).cloned().collect();
    assert_eq!(&qlik_support::digest(stream, &orphans), truth.stream("license_assignment_orphans"));
    assert_eq!(rows.iter().filter(|a| a["orphan"] == json!(false)).count(), 210, "every user's assignment");

    let plain =
        read(&config(&sim, &sim.keys().admin, json!({})), Some(&[stream]), &State::default(), false).await;
    assert_exact(&sim, &plain, &[stream], "without include_orphans");
    assert!(plain.stream(stream).iter().all(|a| a["orphan"].is_null()), "not asked, not known");
}

#[tokio::test]
async fn records_keep_unknown_fields_and_never_the_licence_key() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    sim.set_faults(tests::qlik_sim::Faults { schema_drift: true, ..Default::default() });
    let outcome = read(&config(&sim, &sim.keys().admin, json!({})), None, &State::default(), false).await;
    assert_exact(&sim, &outcome, &names(), "schema drift");
    let with_extra = outcome
        .records
        .values()
        .flatten()
        .filter(|r| r["_extra"].as_object().is_some_and(|e| !e.is_empty()))
        .count();
    assert!(with_extra > 0, "drifted fields land in _extra");
    let dump = outcome.dump();
    assert!(!dump.contains(sim.license_key()), "licenseKey leaked");
    assert!(!dump.contains("licenseKey"));
}

//! User activity (issue 16): `user_sessions` lands the session audit events, and only
//! those, incrementally with a look-back, and backfills days past Qlik's 90-day online
//! retention from the audit archive; per user, the last session the hub holds is the
//! simulator's.

mod qlik_support;

use std::collections::BTreeMap;

use connector_api::State;
use qlik_support::{assert_exact, config, digest, read};
use serde_json::{Value, json};
use tests::digest::key_digest;
use tests::qlik_sim::{SimConfig, Simulator};

const STREAM: &str = "user_sessions";

/// Per user, the latest `event_time` among `rows`.
fn last_sessions(rows: &[Value]) -> BTreeMap<String, String> {
    let mut last = BTreeMap::new();
    for r in rows {
        let (user, at) = (r["user_id"].as_str().unwrap(), r["event_time"].as_str().unwrap());
        let entry = last.entry(user.to_string()).or_insert_with(|| at.to_string());
        if at > entry.as_str() {
            *entry = at.to_string();
        }
    }
    last
}

#[tokio::test]
async fn sessions_land_per_user_and_a_rerun_resumes_with_the_look_back() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let c = config(&sim, &sim.keys().admin, json!({}));
    let first = read(&c, Some(&[STREAM]), &State::default(), false).await;
    assert!(first.error.is_none(), "{:?}", first.error);
    assert_exact(&sim, &first, &[STREAM], "online sessions");
    let rows = first.stream(STREAM);
    assert!(rows.iter().all(|r| r["event_type"].as_str().unwrap().contains("user-session")));
    assert!(rows.iter().all(|r| r["from_archive"] == false && r["data"]["sessionId"].is_string()));
    let last = last_sessions(rows);
    assert_eq!(
        key_digest(last.iter().map(|(u, at)| [u.as_str(), at.as_str()])),
        *sim.ground_truth().stream("user_last_session")
    );
    assert!(last.len() < 250, "{} of 250 users had a session in 90 days: the others are idle", last.len());
    let types: Vec<_> = sim.requests().into_iter().filter(|r| r.path == "/api/v1/audits").collect();
    assert!(
        types.iter().all(|r| r.query.contains("eventType=com.qlik") && r.query.contains("sort=%2BeventTime"))
    );
    assert!(!sim.requests().iter().any(|r| r.path == "/api/v1/audits/archive"), "nothing to backfill");
    let (checkpoint, before) = first.states.last().unwrap();
    assert_eq!(*before, rows.len(), "one checkpoint, after every type is read");
    let latest = rows.iter().map(|r| r["event_time"].as_str().unwrap()).max().unwrap();
    assert_eq!(checkpoint.value, json!({"event_time": latest}));

    sim.clear_requests();
    let again = read(&c, Some(&[STREAM]), &first.final_state(), false).await;
    let requests: Vec<_> = sim.requests().into_iter().filter(|r| r.path == "/api/v1/audits").collect();
    assert_eq!(requests.len(), 4, "one page per session type: {requests:?}");
    assert!(requests.iter().all(|r| r.query.contains("eventTime=")), "{requests:?}");
    let cutoff = time::OffsetDateTime::parse(latest, &time::format_description::well_known::Rfc3339).unwrap()
        - time::Duration::hours(48);
    let expected: Vec<Value> = rows
        .iter()
        .filter(|r| {
            time::OffsetDateTime::parse(
                r["event_time"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap()
                >= cutoff
        })
        .cloned()
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(
        digest(STREAM, again.stream(STREAM)),
        digest(STREAM, &expected),
        "the last 48 hours again, nothing else"
    );
    assert_eq!(again.states.last().unwrap().0.value, checkpoint.value, "the cursor stays");
}

/// The manual's idle-seat query, step by step: professional assignments, joined to users on
/// the subject, whose user has no session row within 90 days of `now`.
fn idle_professional_seats(
    assignments: &[Value],
    users: &[Value],
    sessions: &[Value],
    now: &str,
) -> Vec<Value> {
    let cutoff = time::OffsetDateTime::parse(now, &time::format_description::well_known::Rfc3339).unwrap()
        - time::Duration::days(90);
    let last = last_sessions(sessions);
    let recent = |user: &str| {
        last.get(user).is_some_and(|at| {
            time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).unwrap() >= cutoff
        })
    };
    let by_subject: BTreeMap<&str, &str> =
        users.iter().map(|u| (u["subject"].as_str().unwrap(), u["id"].as_str().unwrap())).collect();
    assignments
        .iter()
        .filter(|a| a["type"] == "professional")
        .filter(|a| by_subject.get(a["subject"].as_str().unwrap()).is_some_and(|id| !recent(id)))
        .map(|a| json!({"subject": a["subject"]}))
        .collect()
}

#[tokio::test]
async fn the_idle_seat_query_lists_the_seats_the_simulator_knows_are_idle() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let streams = ["license_assignments", "users", STREAM];
    let outcome =
        read(&config(&sim, &sim.keys().admin, json!({})), Some(&streams), &State::default(), false).await;
    assert_exact(&sim, &outcome, &streams, "seats, users, sessions");
    let now = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap();
    let idle = idle_professional_seats(
        outcome.stream("license_assignments"),
        outcome.stream("users"),
        outcome.stream(STREAM),
        &now,
    );
    let keys = key_digest(idle.iter().map(|a| [a["subject"].as_str().unwrap()]));
    assert_eq!(keys, *sim.ground_truth().stream("idle_professional_seats"));
    let professional =
        outcome.stream("license_assignments").iter().filter(|a| a["type"] == "professional").count();
    assert!(
        !idle.is_empty() && idle.len() < professional,
        "{} of {professional} professional seats idle",
        idle.len()
    );
}

#[tokio::test]
async fn days_past_the_online_retention_come_from_the_archive() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let start = (time::OffsetDateTime::now_utc() - time::Duration::days(200)).date().to_string();
    let c = config(&sim, &sim.keys().admin, json!({"sessions_start": start}));
    let outcome = read(&c, Some(&[STREAM]), &State::default(), false).await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    let mut distinct: BTreeMap<String, Value> = BTreeMap::new();
    for r in outcome.stream(STREAM) {
        distinct.insert(r["event_id"].as_str().unwrap().to_string(), r.clone());
    }
    let distinct: Vec<Value> = distinct.into_values().collect();
    assert_eq!(
        &digest(STREAM, &distinct),
        sim.ground_truth().stream("user_sessions_with_archive"),
        "archived and online sessions"
    );
    // The first online day is read from both; the hub upserts the repeats by event_id.
    let repeats = outcome.stream(STREAM).len() - distinct.len();
    assert!((1..=8).contains(&repeats), "{repeats} events of the boundary day came twice");
    let archived = outcome.stream(STREAM).iter().filter(|r| r["from_archive"] == true).count();
    assert!(
        archived as u64 > sim.ground_truth().stream("user_sessions_with_archive").count / 3,
        "{archived}"
    );
    let days: Vec<_> = sim.requests().into_iter().filter(|r| r.path == "/api/v1/audits/archive").collect();
    assert!(
        (110..=112).contains(&days.len()),
        "200 days less the 90 online, both ends included: {}",
        days.len()
    );
    let archive_checkpoints = outcome.states.len() - 1;
    assert_eq!(archive_checkpoints, days.len(), "a checkpoint after each archived day");
}

//! The SCIM connector against the SCIM test server: exact counts and digests whatever
//! the page size, paging that stops on the last page, error kinds, retries through the
//! shared HTTP plumbing, and incremental reads.

use std::collections::BTreeMap;
use std::time::Duration;

use connector_api::http::RetryPolicy;
use connector_api::{CheckStatus, Connector, ErrorKind, Message, State, StreamEvent};
use futures::StreamExt;
use scim_connector::ScimConnector;
use serde_json::{Value, json};
use tests::digest::{KeyDigest, key_digest};
use tests::scim_server::{ScimServer, ScimServerConfig};

/// Retries in milliseconds, so fault tests stay fast.
fn fast_retries() -> ScimConnector {
    ScimConnector::with_retry_policy(RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        max_elapsed: Duration::from_secs(10),
    })
}

fn config(server: &ScimServer, page_size: u32) -> Value {
    json!({"base_url": server.base_url(), "token": server.token(), "page_size": page_size})
}

/// Everything a read emitted, and its first error (a failed stream or the end of the read).
struct Run {
    messages: Vec<Message>,
    error: Option<connector_api::Error>,
}

impl Run {
    fn records(&self, stream: &str) -> Vec<&Value> {
        self.messages
            .iter()
            .filter_map(|m| match m {
                Message::Record(r) if r.stream == stream => Some(&r.data),
                _ => None,
            })
            .collect()
    }

    fn digest(&self, stream: &str, key: &[&str]) -> KeyDigest {
        key_digest(
            self.records(stream).into_iter().map(|r| {
                key.iter().map(|k| r[*k].as_str().unwrap_or_default().to_string()).collect::<Vec<_>>()
            }),
        )
    }

    fn events(&self, stream: &str) -> Vec<&StreamEvent> {
        self.messages
            .iter()
            .filter_map(|m| match m {
                Message::Status(s) if s.stream == stream => Some(&s.event),
                _ => None,
            })
            .collect()
    }

    fn state(&self) -> State {
        let mut state = State::default();
        for m in &self.messages {
            if let Message::State(c) = m {
                state.set(c.stream.clone(), c.value.clone());
            }
        }
        state
    }
}

async fn read(
    connector: &ScimConnector,
    config: &Value,
    streams: Option<&[&str]>,
    full_refresh: bool,
    state: &State,
) -> Run {
    let catalog = connector.discover(config).await.unwrap();
    let names: Option<Vec<String>> = streams.map(|s| s.iter().map(|n| n.to_string()).collect());
    let configured = catalog.configure(names.as_deref(), full_refresh).unwrap();
    let mut stream = match connector.read(config, &configured, state).await {
        Ok(s) => s,
        Err(e) => return Run { messages: vec![], error: Some(e) },
    };
    let mut messages = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(m) => messages.push(m),
            Err(e) => return Run { messages, error: Some(e) },
        }
    }
    // A failed stream does not end the read; the first failure is the run's error.
    let error = messages.iter().find_map(|m| match m {
        Message::Status(s) => s.event.error(),
        _ => None,
    });
    Run { messages, error }
}

#[tokio::test]
async fn counts_and_digests_match_ground_truth_at_every_page_size() {
    let server = ScimServer::start(ScimServerConfig::small()).await.unwrap();
    let truth: BTreeMap<&str, KeyDigest> =
        ["users", "groups", "group_members"].into_iter().map(|s| (s, server.truth(s).unwrap())).collect();
    assert_eq!(truth["users"].count, 137);
    assert_eq!(truth["groups"].count, 12);
    let mut users_requests = server.requests("/Users");
    // 1 and 7 page through everything in small steps, 50 matches the server's cap
    // exactly, 100 and 1000 ask for more than the server gives.
    for (page_size, expected_pages) in [(1u32, 137u64), (7, 20), (50, 3), (100, 3), (1000, 3)] {
        let run =
            read(&ScimConnector::default(), &config(&server, page_size), None, true, &State::default()).await;
        assert!(run.error.is_none(), "page size {page_size}: {:?}", run.error);
        assert_eq!(run.digest("users", &["id"]), truth["users"], "users at page size {page_size}");
        assert_eq!(run.digest("groups", &["id"]), truth["groups"], "groups at page size {page_size}");
        assert_eq!(
            run.digest("group_members", &["group_id", "member_id"]),
            truth["group_members"],
            "group_members at page size {page_size}"
        );
        let now = server.requests("/Users");
        assert_eq!(now - users_requests, expected_pages, "requests to /Users at page size {page_size}");
        users_requests = now;
    }
}

#[tokio::test]
async fn paging_stops_on_the_last_page_without_an_extra_request() {
    // 100 users in pages of 10: exactly ten requests, the tenth page full.
    let server = ScimServer::start(ScimServerConfig { users: 100, groups: 3, ..ScimServerConfig::small() })
        .await
        .unwrap();
    let run =
        read(&ScimConnector::default(), &config(&server, 10), Some(&["users"]), true, &State::default())
            .await;
    assert!(run.error.is_none());
    assert_eq!(run.records("users").len(), 100);
    assert_eq!(server.requests("/Users"), 10);
    let pages: Vec<u64> = run
        .events("users")
        .into_iter()
        .filter_map(|e| match e {
            StreamEvent::PageFetched { records } => Some(*records),
            _ => None,
        })
        .collect();
    assert_eq!(pages, vec![10; 10]);
    assert_eq!(run.events("users").last(), Some(&&StreamEvent::Completed { records: 100 }));

    // An empty directory: one request, no records, still completed.
    let empty = ScimServer::start(ScimServerConfig { users: 0, groups: 0, ..ScimServerConfig::small() })
        .await
        .unwrap();
    let run = read(&ScimConnector::default(), &config(&empty, 10), None, true, &State::default()).await;
    assert!(run.error.is_none());
    assert_eq!(run.records("users").len() + run.records("groups").len(), 0);
    assert_eq!(empty.requests("/Users"), 1);
    assert_eq!(empty.requests("/Groups"), 1, "one listing of /Groups feeds groups and group_members");
}

#[tokio::test]
async fn a_rejected_token_is_an_auth_error() {
    let server = ScimServer::start(ScimServerConfig::small()).await.unwrap();
    let bad = json!({"base_url": server.base_url(), "token": "not-the-token"});
    let run = read(&ScimConnector::default(), &bad, Some(&["users"]), true, &State::default()).await;
    let err = run.error.as_ref().expect("a rejected token must end the read");
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert_eq!(err.context_value("stream"), Some("users"));
    assert_eq!(err.context_value("endpoint"), Some("GET /Users"));
    assert!(!err.is_retryable());
    assert!(!format!("{err} {err:?}").contains("not-the-token"));
    assert!(run.records("users").is_empty());
    assert!(matches!(run.events("users").last(), Some(StreamEvent::Failed { .. })));
    assert_eq!(server.requests("/Users"), 1, "a 401 is not retried");

    let report = ScimConnector::default().check(&bad).await.unwrap();
    assert_eq!(report.steps[0].name, "authenticate");
    assert_eq!(report.steps[0].status, CheckStatus::Failed);
    assert!(report.steps[1..].iter().all(|s| s.status == CheckStatus::Skipped));
}

#[tokio::test]
async fn a_wrong_base_url_is_not_found_with_a_hint() {
    let server = ScimServer::start(ScimServerConfig::small()).await.unwrap();
    let wrong = json!({"base_url": format!("http://{}/api", server.addr()), "token": server.token()});
    let run = read(&ScimConnector::default(), &wrong, Some(&["groups"]), true, &State::default()).await;
    let err = run.error.unwrap();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.hint().unwrap().contains("base_url"), "{err}");
}

#[tokio::test]
async fn server_errors_are_retried_by_the_shared_plumbing() {
    let server = ScimServer::start(ScimServerConfig::small()).await.unwrap();
    server.fail_next(2, 503, None);
    let run = read(&fast_retries(), &config(&server, 50), Some(&["users"]), true, &State::default()).await;
    assert!(run.error.is_none(), "{:?}", run.error);
    assert_eq!(run.digest("users", &["id"]), server.truth("users").unwrap());
    let retries: Vec<&str> = run
        .events("users")
        .into_iter()
        .filter_map(|e| match e {
            StreamEvent::Retrying { reason, .. } => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(retries, vec!["HTTP 503", "HTTP 503"]);
    assert_eq!(server.requests("/Users"), 3 + 2, "three pages plus two failed attempts");

    // 429 with Retry-After: waited for, then served.
    server.fail_next(1, 429, Some(1));
    let started = std::time::Instant::now();
    let run = read(&fast_retries(), &config(&server, 50), Some(&["groups"]), true, &State::default()).await;
    assert!(run.error.is_none());
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After: 1 was honoured");
    assert_eq!(run.records("groups").len(), 12);
}

#[tokio::test]
async fn persistent_server_errors_end_the_read_as_transient() {
    let server = ScimServer::start(ScimServerConfig::small()).await.unwrap();
    server.fail_next(100, 500, None);
    let run = read(&fast_retries(), &config(&server, 50), Some(&["users"]), true, &State::default()).await;
    let err = run.error.unwrap();
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert!(err.message().contains("failed after 4 attempts"), "{err}");
    assert_eq!(server.requests("/Users"), 4);
}

#[tokio::test]
async fn incremental_reads_return_only_what_changed() {
    let server = ScimServer::start(ScimServerConfig::small()).await.unwrap();
    let connector = ScimConnector::default();
    let mut config = config(&server, 50);
    config["lookback"] = json!("0s");

    let first = read(&connector, &config, Some(&["users"]), false, &State::default()).await;
    assert_eq!(first.records("users").len(), 137);
    let state = first.state();
    assert_eq!(
        state.get("users"),
        Some(&json!({"last_modified": "2024-01-02T10:17:00Z"})),
        "newest of 137 minutes"
    );
    // The checkpoint comes after the last record.
    let last_record = first.messages.iter().rposition(|m| matches!(m, Message::Record(_))).unwrap();
    let checkpoint = first.messages.iter().position(|m| matches!(m, Message::State(_))).unwrap();
    assert!(checkpoint > last_record);

    let again = read(&connector, &config, Some(&["users"]), false, &state).await;
    assert!(again.error.is_none());
    assert!(again.records("users").is_empty());
    assert_eq!(again.state(), state, "an empty incremental read keeps the checkpoint");

    let touched = server.touch_users(5);
    let delta = read(&connector, &config, Some(&["users"]), false, &state).await;
    let mut ids: Vec<&str> = delta.records("users").iter().map(|r| r["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    let mut expected: Vec<&str> = touched.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(ids, expected);
    assert_ne!(delta.state(), state);

    // A full refresh ignores the state.
    let full = read(&connector, &config, Some(&["users"]), true, &delta.state()).await;
    assert_eq!(full.records("users").len(), 137);
}

/// SCIM listings are unsorted: a user changed during a read on a page already read is
/// older than the checkpoint a later page's change sets. The look-back reads it next time;
/// without one it would be missed for good.
#[tokio::test]
async fn a_change_on_a_page_already_read_is_caught_by_the_look_back() {
    let server = ScimServer::start(ScimServerConfig::small()).await.unwrap();
    let connector = ScimConnector::default();
    let with_lookback = config(&server, 50);
    let mut without = with_lookback.clone();
    without["lookback"] = json!("0s");

    server.touch_first_and_last_user_before(2);
    let first = read(&connector, &with_lookback, Some(&["users"]), false, &State::default()).await;
    let users = first.records("users");
    assert_eq!(users.len(), 137);
    let (early, late) = (users[0], users[136]);
    let checkpoint = first.state();
    assert_eq!(
        checkpoint.get("users").and_then(|s| s["last_modified"].as_str()),
        late["last_modified"].as_str(),
        "the last user's change, read on the last page, is the checkpoint"
    );
    assert!(early["last_modified"].as_str() < late["last_modified"].as_str());
    let changed_first = |run: &Run| {
        run.records("users")
            .iter()
            .any(|u| u["id"] == early["id"] && u["last_modified"] != early["last_modified"])
    };

    let missed = read(&connector, &without, Some(&["users"]), false, &checkpoint).await;
    assert!(!changed_first(&missed), "without a look-back the first user's change is lost");
    let caught = read(&connector, &with_lookback, Some(&["users"]), false, &checkpoint).await;
    assert!(caught.error.is_none());
    assert!(changed_first(&caught), "the look-back reads the first user's change");
    assert_eq!(caught.state(), checkpoint, "and keeps the checkpoint");
}

#[test]
fn a_lookback_that_is_not_a_duration_names_the_field() {
    let err = scim_connector::config::ScimConfig::from_json(
        &json!({"base_url": "https://idp.example/scim/v2", "token": "t", "lookback": "an hour"}),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert_eq!(err.context_value("field"), Some("lookback"));
}

#[tokio::test]
async fn a_corrupt_checkpoint_is_a_config_error() {
    let server = ScimServer::start(ScimServerConfig::small()).await.unwrap();
    let mut state = State::default();
    state.set("users", json!({"cursor": "abc"}));
    let run = read(&ScimConnector::default(), &config(&server, 50), Some(&["users"]), false, &state).await;
    let err = run.error.unwrap();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert_eq!(server.requests("/Users"), 0);
}

#[tokio::test]
async fn requests_per_minute_holds_back_the_request_past_the_budget() {
    let server = ScimServer::start(ScimServerConfig::small()).await.unwrap();
    // 10 requests in any minute: the first 10 of 14 pages go at once, the 11th waits for
    // the first to be a minute old.
    let config = json!({
        "base_url": server.base_url(), "token": server.token(), "page_size": 10, "requests_per_minute": 10
    });
    let connector = ScimConnector::default();
    let catalog =
        connector.discover(&config).await.unwrap().configure(Some(&["users".into()]), true).unwrap();
    let mut stream = connector.read(&config, &catalog, &State::default()).await.unwrap();
    let mut records = 0;
    let held = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(message) = stream.next().await {
            if let Message::Record(_) = message.unwrap() {
                records += 1;
            }
        }
    })
    .await;
    assert!(held.is_err(), "the read waits for the window");
    assert_eq!(server.requests("/Users"), 10, "the budget was spent at once, and not exceeded");
    assert_eq!(records, 100);
}

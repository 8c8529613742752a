//! Property test: whatever a tenant answers a listing with (any status, content type and
//! body, JSON or not, cut off, nested, echoing the API key), the page parser neither
//! panics nor lets the key, or any piece of it, into an error.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use connector_api::http::{RateLimiter, RetryPolicy};
use futures::StreamExt;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use qlik_connector::Settings;
use qlik_connector::client::{QlikClient, SignIn};
use qlik_connector::pagination::pages;
use serde_json::{Value, json};
use tests::qlik_sim::{Faults, Hostile, SimConfig, Simulator};

/// How long a piece of the key may show.
const PIECE: usize = 16;

/// Set by the panic hook: a panic in the connector's page-fetching task would otherwise
/// only end the stream early.
static PANICKED: AtomicBool = AtomicBool::new(false);

/// Any JSON value, a few levels deep, whose strings may be the key.
fn json_value(key: String) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::String),
        Just(Value::String(key.clone())),
        Just(Value::String(format!("token Bearer {key} is expired"))),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Bodies a listing might answer: raw bytes, list envelopes with odd items, links and
/// totals, the same cut short, text around the key, JSON nested past any limit.
fn body(key: String) -> impl Strategy<Value = Vec<u8>> {
    let envelope = (
        prop::collection::vec(json_value(key.clone()), 0..5),
        prop::option::of(prop_oneof![
            Just(key.clone()),
            "[ -~]{0,40}",
            Just("/api/v1/users?page=2".to_string())
        ]),
        prop::option::of(any::<i64>()),
    )
        .prop_map(|(data, next, count)| {
            json!({"data": data, "links": {"next": {"href": next}}, "meta": {"count": count}})
                .to_string()
                .into_bytes()
        })
        .boxed();
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..400),
        envelope.clone(),
        (envelope, any::<prop::sample::Index>())
            .prop_map(|(bytes, cut)| bytes[..cut.index(bytes.len() + 1)].to_vec()),
        ("[ -~\\n]{0,60}", "[ -~\\n]{0,60}")
            .prop_map(move |(before, after)| format!("{before}{key}{after}").into_bytes()),
        (1usize..400).prop_map(
            |depth| format!("{{\"data\":[{}1{}]}}", "[".repeat(depth), "]".repeat(depth)).into_bytes()
        ),
    ]
}

fn answer(key: String) -> impl Strategy<Value = Hostile> {
    (
        prop::sample::select(vec![200u16, 200, 200, 204, 400, 401, 403, 404, 418, 500]),
        prop::option::of(prop::sample::select(vec![
            "application/json",
            "application/json; charset=utf-8",
            "text/html; charset=utf-8",
            "text/plain; charset=iso-8859-1",
        ])),
        body(key),
    )
        .prop_map(|(status, content_type, body)| Hostile::Canned {
            path: "/api/v1/users".into(),
            status,
            content_type: content_type.map(str::to_string),
            body,
        })
}

/// Every error text a listing of `client` produced, records included.
async fn listing_errors(client: Arc<QlikClient>) -> Vec<String> {
    let url = client.url("/api/v1/users");
    let mut pages = std::pin::pin!(pages(client, url));
    let mut errors = Vec::new();
    while let Some(page) = pages.next().await {
        match page {
            Ok(page) => {
                for record in page.records() {
                    if let Err(e) = record {
                        errors.push(format!("{e}\n{e:?}"));
                    }
                }
            }
            Err(e) => errors.push(format!("{e}\n{e:?}")),
        }
    }
    errors
}

#[test]
fn arbitrary_listing_bodies_neither_panic_nor_leak_the_key() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICKED.store(true, Ordering::SeqCst);
        default_hook(info);
    }));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let sim = rt.block_on(Simulator::start(SimConfig::small())).unwrap();
    let key = sim.keys().admin.clone();
    let settings =
        Settings::from_json(&json!({"tenant_url": sim.base_url(), "api_key": key, "request_timeout": 5}))
            .unwrap();
    let sign_in = SignIn::from_settings(&settings).unwrap();
    let once =
        RetryPolicy { max_attempts: 1, max_elapsed: Duration::from_secs(10), ..RetryPolicy::default() };
    let client = Arc::new(
        QlikClient::with_limiter(&settings, sign_in, Arc::new(RateLimiter::per_minute(1_000_000)), once)
            .unwrap(),
    );
    let pieces: Vec<String> =
        key.as_bytes().windows(PIECE).map(|w| String::from_utf8_lossy(w).into_owned()).collect();

    let mut runner = TestRunner::new(Config { cases: 300, failure_persistence: None, ..Config::default() });
    let failures = std::cell::Cell::new(0);
    runner
        .run(&answer(key.clone()), |hostile| {
            sim.set_faults(Faults { hostile: Some(hostile), ..Faults::default() });
            let errors = rt.block_on(listing_errors(client.clone()));
            failures.set(failures.get() + usize::from(!errors.is_empty()));
            prop_assert!(!PANICKED.load(Ordering::SeqCst), "the parser panicked");
            for error in &errors {
                if let Some(piece) = pieces.iter().find(|p| error.contains(p.as_str())) {
                    prop_assert!(false, "an error shows `{}`, a piece of the key:\n{}", piece, error);
                }
            }
            Ok(())
        })
        .unwrap();
    let failures = failures.get();
    assert!(failures > 100, "most arbitrary bodies are refused, with an error: {failures}");
}

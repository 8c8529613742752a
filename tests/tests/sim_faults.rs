//! Every injectable fault actually happens on the wire.

mod sim_common;

use std::time::{Duration, Instant};

use serde_json::Value;
use sim_common::{client, get, s};
use tests::qlik_sim::{FOREIGN_HOST, Faults, SimConfig, Simulator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends one raw HTTP/1.1 request and returns everything read until the server closes.
async fn raw_get(sim: &Simulator, path: &str) -> Vec<u8> {
    let mut stream = tokio::net::TcpStream::connect(sim.local_addr()).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        sim.local_addr(),
        sim.keys().admin
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out))
        .await
        .expect("server closes");
    out
}

async fn with_faults(faults: Faults) -> Simulator {
    Simulator::start(SimConfig { faults, ..SimConfig::small() }).await.unwrap()
}

#[tokio::test]
async fn latency_and_jitter_delay_responses() {
    let sim = with_faults(Faults {
        latency: Duration::from_millis(400),
        jitter: Duration::from_millis(40),
        ..Faults::default()
    })
    .await;
    let started = Instant::now();
    assert_eq!(
        get(&client(), &format!("{}/api/v1/roles", sim.base_url()), Some(&sim.keys().admin)).await.status,
        200
    );
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(400), "{took:?}");
    sim.set_faults(Faults::default());
    let started = Instant::now();
    get(&client(), &format!("{}/api/v1/roles", sim.base_url()), Some(&sim.keys().admin)).await;
    // Without latency a loopback answer takes milliseconds; 400 leaves room for a loaded CI.
    assert!(started.elapsed() < Duration::from_millis(400));
}

#[tokio::test]
async fn error_statuses_are_injected() {
    let sim = with_faults(Faults { error_5xx_rate: 1.0, ..Faults::default() }).await;
    let url = format!("{}/api/v1/users", sim.base_url());
    let got = get(&client(), &url, Some(&sim.keys().admin)).await;
    assert!([500, 502, 503].contains(&got.status), "{}", got.status);
    assert!(got.body["errors"][0]["title"].is_string());
    sim.set_faults(Faults { error_429_rate: 1.0, ..Faults::default() });
    let got = get(&client(), &url, Some(&sim.keys().admin)).await;
    assert_eq!(got.status, 429);
    assert_eq!(got.headers["retry-after"], "1");
    sim.set_faults(Faults { error_5xx_rate: 0.5, ..Faults::default() });
    let mut errors = 0;
    for _ in 0..60 {
        if get(&client(), &url, Some(&sim.keys().admin)).await.status >= 500 {
            errors += 1;
        }
    }
    assert!((10..=50).contains(&errors), "about half of 60: {errors}");
}

#[tokio::test]
async fn a_burst_of_faults_on_one_request_ends_after_the_longest_burst() {
    let sim = with_faults(Faults { error_5xx_rate: 1.0, longest_burst: Some(3), ..Faults::default() }).await;
    let (users, roles) =
        (format!("{}/api/v1/users", sim.base_url()), format!("{}/api/v1/roles", sim.base_url()));
    let mut statuses = Vec::new();
    for url in [&users, &users, &roles, &users, &users, &users, &users] {
        statuses.push(get(&client(), url, Some(&sim.keys().admin)).await.status);
    }
    let failed: Vec<bool> = statuses.iter().map(|s| *s >= 500).collect();
    // Per request: three faulty tries, then a clean one, then faults again; the roles request
    // in between has its own count.
    assert_eq!(failed, [true, true, true, true, false, true, true], "{statuses:?}");
    assert_eq!(statuses[4], 200);
}

#[tokio::test]
async fn dropped_connections_close_without_a_response() {
    let sim = with_faults(Faults { drop_connection_rate: 1.0, ..Faults::default() }).await;
    assert!(raw_get(&sim, "/api/v1/users").await.is_empty());
    let err =
        client().get(format!("{}/api/v1/users", sim.base_url())).bearer_auth(&sim.keys().admin).send().await;
    assert!(err.is_err(), "no response at all");
    assert!(sim.requests().iter().all(|r| r.status == 0));
}

#[tokio::test]
async fn truncated_bodies_stop_short_of_their_content_length() {
    let sim = with_faults(Faults { truncate_body_rate: 1.0, ..Faults::default() }).await;
    let raw = raw_get(&sim, "/api/v1/users?limit=50").await;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("headers arrive") + 4;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let announced: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .expect("content-length")
        .trim()
        .parse()
        .unwrap();
    let received = raw.len() - split;
    assert!(received > 0 && received < announced, "{received} of {announced}");
    let resp = client()
        .get(format!("{}/api/v1/users", sim.base_url()))
        .bearer_auth(&sim.keys().admin)
        .send()
        .await
        .unwrap();
    assert!(resp.text().await.is_err(), "reading the body fails");
}

#[tokio::test]
async fn malformed_json_is_not_json() {
    let sim = with_faults(Faults { malformed_json_rate: 1.0, ..Faults::default() }).await;
    let resp = client()
        .get(format!("{}/api/v1/groups", sim.base_url()))
        .bearer_auth(&sim.keys().admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.bytes().await.unwrap();
    assert!(serde_json::from_slice::<Value>(&text).is_err());
    assert!(text.starts_with(b"{\"data\""));
}

#[tokio::test]
async fn next_links_can_loop_or_point_elsewhere() {
    let sim = with_faults(Faults { looping_next: true, ..Faults::default() }).await;
    let url = format!("{}/api/v1/users?limit=10", sim.base_url());
    let first = get(&client(), &url, Some(&sim.keys().admin)).await;
    assert_eq!(s(&first.body["links"]["next"], "href"), url);
    assert_eq!(s(&first.body["links"]["self"], "href"), url);
    let consumption = format!("{}/api/v1/licenses/consumption?limit=10", sim.base_url());
    let first = get(&client(), &consumption, Some(&sim.keys().admin)).await;
    assert_eq!(s(&first.body["links"]["next"], "href"), consumption);

    sim.set_faults(Faults { foreign_host_next: true, ..Faults::default() });
    let got = get(&client(), &url, Some(&sim.keys().admin)).await;
    let next = s(&got.body["links"]["next"], "href");
    assert!(next.starts_with(&format!("http://{FOREIGN_HOST}/api/v1/users?limit=10&next=")), "{next}");
    // Rebased onto the tenant, the same path and query give the second page.
    let rebased = next.replace(FOREIGN_HOST, &sim.local_addr().to_string());
    let second = get(&client(), &rebased, Some(&sim.keys().admin)).await;
    assert_eq!(second.status, 200);
    assert_ne!(second.body["data"][0]["id"], got.body["data"][0]["id"]);
}

#[tokio::test]
async fn schema_drift_adds_drops_and_nulls_fields() {
    let sim = with_faults(Faults { schema_drift: true, ..Faults::default() }).await;
    let page = get(&client(), &format!("{}/api/v1/users?limit=20", sim.base_url()), Some(&sim.keys().admin))
        .await
        .body;
    let users = page["data"].as_array().unwrap();
    assert!(users.iter().all(|u| u.get("qlikAddedIn2026").is_some() && u["id"].is_string()));
    assert!(users.iter().any(|u| u.get("email") == Some(&Value::Null)), "nulls in optional fields");
    assert!(users.iter().any(|u| u.get("zoneinfo").is_none()), "missing optional fields");
    assert!(page.get("deprecation").is_some());
    let overview =
        get(&client(), &format!("{}/api/v1/licenses/overview", sim.base_url()), Some(&sim.keys().admin))
            .await
            .body;
    assert!(overview["allotments"][0].get("unitsReserved").is_some());
    assert!(overview["licenseNumber"].is_string());
}

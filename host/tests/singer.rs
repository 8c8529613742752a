//! `connector-host singer` piped into real Singer targets from PyPI: `target-jsonl` and
//! `meltanolabs-target-postgres` land the simulated Qlik tenant exactly (key digests equal
//! the simulator's ground truth), a catalog passed back deselects a stream, the target's
//! last STATE resumes the tap, and the Meltano example runs this tap with the connector's
//! own settings.

mod common;
mod engines;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use engines::{BINARY, Venv, assert_exact, digest, qlik_config, qlik_streams};
use qlik_connector as _;
use serde_json::{Value, json};
use tests::digest::{KeyDigest, key_digest};
use tests::qlik_sim::{SimConfig, Simulator};

/// Pipes `connector-host singer --connector qlik-sense <tap_args>` into `target` of `venv`
/// with `target_config`; returns what the target printed (its STATE lines).
fn tap_into(venv: &Venv, target: &str, target_config: &Value, tap_args: &[&str], dir: &Path) -> String {
    let config = dir.join(format!("{target}.json"));
    std::fs::write(&config, target_config.to_string()).unwrap();
    let started = Instant::now();
    let mut tap = Command::new(BINARY)
        .args(["singer", "--connector", "qlik-sense"])
        .args(tap_args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let loaded: Output = Command::new(venv.bin(target))
        .arg("--config")
        .arg(&config)
        .stdin(tap.stdout.take().unwrap())
        .output()
        .unwrap();
    let tapped = tap.wait().unwrap();
    println!("singer tap into {target}: {:.1?}", started.elapsed());
    assert!(tapped.success(), "the tap failed: {tapped}");
    assert!(loaded.status.success(), "{target} failed: {}", String::from_utf8_lossy(&loaded.stderr));
    String::from_utf8(loaded.stdout).unwrap()
}

/// The bookmarks of the last STATE a target printed, as the file Meltano passes to `--state`.
fn last_state(target_stdout: &str, dir: &Path) -> (Value, String) {
    let state: Value =
        serde_json::from_str(target_stdout.lines().last().expect("the target printed a STATE")).unwrap();
    let path = dir.join("state.json");
    std::fs::write(&path, state.to_string()).unwrap();
    (state, path.display().to_string())
}

/// Key digests of the `STREAM.jsonl` files target-jsonl wrote in `dir`.
fn jsonl_digests(dir: &Path) -> BTreeMap<String, KeyDigest> {
    let keys: BTreeMap<String, Vec<String>> = qlik_streams().into_iter().collect();
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|path| {
            let stream = path.file_stem().unwrap().to_string_lossy().to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            let records: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            let digest = digest(&records, &keys[&stream]);
            (stream, digest)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn target_jsonl_lands_the_tenant_exactly_and_resumes_from_its_state() {
    let Some(jsonl) = engines::venv("target-jsonl") else { return };
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = qlik_config(d, &sim, &sim.keys().admin).display().to_string();

    let discovered = Command::new(BINARY)
        .args(["singer", "--connector", "qlik-sense", "--config", &config, "--discover"])
        .output()
        .unwrap();
    assert!(discovered.status.success());
    let mut catalog: Value = serde_json::from_slice(&discovered.stdout).unwrap();
    for (stream, key) in qlik_streams() {
        let entry =
            catalog["streams"].as_array().unwrap().iter().find(|s| s["tap_stream_id"] == stream.as_str());
        let top = &entry.unwrap_or_else(|| panic!("{stream} not discovered"))["metadata"][0];
        assert_eq!(top["breadcrumb"], json!([]));
        assert_eq!(top["metadata"]["table-key-properties"], json!(key), "{stream}");
        assert_eq!(top["metadata"]["selected"], json!(true), "{stream}");
    }
    // Deselect `apps` and the users' `email`, as Meltano's `select` does, and pass the
    // catalog back.
    for stream in catalog["streams"].as_array_mut().unwrap() {
        let id = stream["tap_stream_id"].clone();
        for entry in stream["metadata"].as_array_mut().unwrap() {
            let breadcrumb = &entry["breadcrumb"];
            if (id == "apps" && *breadcrumb == json!([]))
                || (id == "users" && *breadcrumb == json!(["properties", "email"]))
            {
                entry["metadata"]["selected"] = json!(false);
            }
        }
    }
    let catalog_path = d.join("catalog.json");
    std::fs::write(&catalog_path, catalog.to_string()).unwrap();
    let catalog_path = catalog_path.display().to_string();

    let first = d.join("first");
    std::fs::create_dir(&first).unwrap();
    let target = json!({"destination_path": first, "do_timestamp_file": false});
    let out =
        tap_into(&jsonl, "target-jsonl", &target, &["--config", &config, "--catalog", &catalog_path], d);
    let mut landed = jsonl_digests(&first);
    assert!(!landed.contains_key("apps"), "a deselected stream is not read");
    landed.insert("apps".into(), sim.ground_truth().stream("apps").clone());
    // target-jsonl writes a file for a stream's first record, so a stream with none
    // (consumption_executions on a user-based tenant) has no file: it landed nothing.
    for (stream, _) in qlik_streams() {
        landed.entry(stream).or_insert_with(|| key_digest(Vec::<Vec<String>>::new()));
    }
    assert_exact(&sim, &landed, "target-jsonl");
    let users = std::fs::read_to_string(first.join("users.jsonl")).unwrap();
    let user: Value = serde_json::from_str(users.lines().next().unwrap()).unwrap();
    assert!(user.get("email").is_none() && user.get("name").is_some(), "only `email` is deselected: {user}");

    let (state, state_path) = last_state(&out, d);
    let bookmarks: BTreeSet<&String> = state["bookmarks"].as_object().unwrap().keys().collect();
    assert_eq!(bookmarks, BTreeSet::from([&"license_consumption".into(), &"user_sessions".into()]));
    let second = d.join("second");
    std::fs::create_dir(&second).unwrap();
    let target = json!({"destination_path": second, "do_timestamp_file": false});
    tap_into(
        &jsonl,
        "target-jsonl",
        &target,
        &["--config", &config, "--catalog", &catalog_path, "--state", &state_path],
        d,
    );
    let resumed = jsonl_digests(&second);
    let truth = sim.ground_truth().stream("license_consumption").count;
    assert!(resumed["license_consumption"].count < truth, "the resumed sync starts from the bookmark");
    assert_eq!(
        resumed["users"],
        *sim.ground_truth().stream("users"),
        "full-table streams are read whole again"
    );
}

/// Key digests of the tables target-postgres made in schema `qlik_sense` of `url`.
async fn postgres_digests(url: &str) -> BTreeMap<String, KeyDigest> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let mut digests = BTreeMap::new();
    for (stream, key) in qlik_streams() {
        let columns: Vec<String> = key.iter().map(|k| format!("\"{k}\"::text")).collect();
        let rows = client
            .query(&format!("SELECT {} FROM qlik_sense.{stream}", columns.join(", ")), &[])
            .await
            .unwrap();
        let keys = rows.iter().map(|r| (0..key.len()).map(|i| r.get::<_, String>(i)).collect::<Vec<_>>());
        digests.insert(stream, key_digest(keys));
    }
    digests
}

#[tokio::test(flavor = "multi_thread")]
async fn meltanolabs_target_postgres_lands_the_tenant_exactly_twice_in_a_row() {
    let Some(db) = common::fresh_postgres_database("singer").await else { return };
    let Some(postgres) = engines::venv("target-postgres") else { return };
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = qlik_config(dir.path(), &sim, &sim.keys().admin).display().to_string();
    let url = url::Url::parse(&db).unwrap();
    let target = json!({
        "host": url.host_str().unwrap(),
        "port": url.port().unwrap_or(5432),
        "user": url.username(),
        "password": url.password().unwrap_or_default(),
        "database": url.path().trim_start_matches('/'),
        "default_target_schema": "qlik_sense",
    });
    let out = tap_into(&postgres, "target-postgres", &target, &["--config", &config], dir.path());
    assert_exact(&sim, &postgres_digests(&db).await, "target-postgres");
    // Again from the target's state: upserted by the key properties, never doubled.
    let (_, state) = last_state(&out, dir.path());
    tap_into(&postgres, "target-postgres", &target, &["--config", &config, "--state", &state], dir.path());
    assert_exact(&sim, &postgres_digests(&db).await, "target-postgres, second sync");
}

#[test]
fn the_meltano_example_runs_this_tap_with_the_connectors_settings() {
    // PyYAML comes with the target's environment: a real YAML parser for the example.
    let Some(python) = engines::venv("target-postgres") else { return };
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/meltano");
    let out = Command::new(python.bin("python"))
        .args(["-c", "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))"])
        .arg(example.join("meltano.yml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let project: Value = serde_json::from_slice(&out.stdout).unwrap();
    let tap = &project["plugins"]["extractors"][0];
    assert_eq!(tap["name"], "tap-qlik-sense");
    for capability in ["catalog", "discover", "state"] {
        assert!(tap["capabilities"].as_array().unwrap().contains(&json!(capability)), "{capability}");
    }

    let schema = connector_api::registry::find("qlik-sense").unwrap().spec().config_schema;
    let settings: BTreeMap<&str, &Value> =
        tap["settings"].as_array().unwrap().iter().map(|s| (s["name"].as_str().unwrap(), s)).collect();
    let fields: BTreeMap<&str, &Value> =
        schema["properties"].as_object().unwrap().iter().map(|(k, v)| (k.as_str(), v)).collect();
    assert_eq!(
        settings.keys().collect::<Vec<_>>(),
        fields.keys().collect::<Vec<_>>(),
        "settings are the config fields"
    );
    for (name, field) in fields {
        let setting = settings[name];
        let secret = connector_api::secret::is_secret(field);
        assert_eq!(setting["sensitive"].as_bool().unwrap_or(false), secret, "{name}: sensitive");
        let types: Vec<&str> = match &field["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect(),
            _ => vec![],
        };
        assert_eq!(setting["kind"], json!(types[0]), "{name}: kind");
    }

    let pins = std::fs::read_to_string(engines::dir().join("target-postgres.txt")).unwrap();
    let pin = pins.lines().find(|l| l.starts_with("meltanolabs-target-postgres==")).unwrap();
    assert_eq!(project["plugins"]["loaders"][0]["pip_url"], pin, "the loader is the version the tests run");

    // The executable Meltano runs is this binary's tap: it discovers, called the way
    // Meltano calls it (with the saved state, which discovery ignores).
    let sim_free = tempfile::tempdir().unwrap();
    let config = sim_free.path().join("config.json");
    std::fs::write(&config, r#"{"tenant_url": "https://acme.eu.qlikcloud.com", "api_key": "k-1c9e77"}"#)
        .unwrap();
    let state = sim_free.path().join("state.json");
    std::fs::write(&state, r#"{"bookmarks": {"user_sessions": {"event_time": "2026-01-01T00:00:00Z"}}}"#)
        .unwrap();
    let executable = example.join(tap["executable"].as_str().unwrap());
    let bin_dir = Path::new(BINARY).parent().unwrap();
    let path = std::env::join_paths(
        std::iter::once(bin_dir.to_path_buf())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let out = Command::new(&executable)
        .arg("--config")
        .arg(&config)
        .arg("--state")
        .arg(&state)
        .arg("--discover")
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let catalog: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(catalog["streams"].as_array().unwrap().len(), qlik_streams().len());
}

/// Runs `singer --connector test-source` (see `common`) in-process with `[config]` extras.
async fn test_source_sync(dir: &Path, extras: Value) -> (u8, Vec<Value>, String) {
    let mut config = json!({"api_key": common::GOOD_KEY, "items": 60, "events": 40});
    config.as_object_mut().unwrap().extend(extras.as_object().unwrap().clone());
    let path = dir.join("test-source.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let out =
        common::cli(&["singer", "--connector", "test-source", "--config", path.to_str().unwrap()]).await;
    let messages = out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    (out.code, messages, out.stderr)
}

#[tokio::test]
async fn a_failed_stream_exits_partial_and_the_others_keep_their_state() {
    let dir = tempfile::tempdir().unwrap();
    let (code, messages, _) =
        test_source_sync(dir.path(), json!({"fail_stream": "items", "fail_after": 30})).await;
    assert_eq!(code, 5, "some streams failed, the others were read");
    let count = |kind: &str, stream: &str| {
        messages.iter().filter(|m| m["type"] == kind && m["stream"] == stream).count()
    };
    assert_eq!((count("SCHEMA", "items"), count("SCHEMA", "events")), (1, 1));
    assert_eq!((count("RECORD", "items"), count("RECORD", "events")), (30, 40));
    let last = messages.last().unwrap();
    assert_eq!(last["type"], "STATE");
    assert_eq!(
        last["value"]["bookmarks"],
        json!({"events": {"seq": 40}}),
        "the sync ends with its whole state"
    );
    assert_eq!(
        messages.iter().find(|m| m["type"] == "SCHEMA" && m["stream"] == "events").unwrap()["bookmark_properties"],
        json!(["seq"])
    );

    let (code, messages, stderr) = test_source_sync(dir.path(), json!({"api_key": "wrong-key-5d02"})).await;
    assert_eq!(code, 3, "{stderr}");
    assert!(
        messages.iter().all(|m| m["type"] == "SCHEMA"),
        "nothing but the schemas before the key was refused"
    );
    assert!(!stderr.contains("wrong-key-5d02"), "{stderr}");
}

//! The command line in-process: list, spec, config-file validation, secret references.

mod common;

use std::sync::Arc;

use common::{GOOD_KEY, TestConnector, cli};
use connector_api::Connector;
use connector_api::registry::Registry;
use host::config_file::ConfigFile;

fn write(dir: &std::path::Path, text: &str) -> String {
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn list_shows_the_test_connector_registered_only_through_the_registry() {
    let out = cli(&["list"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.lines().any(|l| l.starts_with("test-source ")), "{}", out.stdout);
    let out = cli(&["list", "--json"]).await;
    let list: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    let ids: Vec<&str> = list.iter().map(|c| c["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "list is sorted by id");
    assert!(ids.contains(&"test-source"));
}

#[tokio::test]
async fn list_shows_every_registered_destination_after_the_connectors() {
    let out = cli(&["list"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (connectors, destinations) = out.stdout.split_once("\nDestinations (--dest):\n").expect(&out.stdout);
    assert!(connectors.lines().any(|l| l.starts_with("test-source ")), "{}", out.stdout);
    for entry in host::sink::registry::DESTINATIONS {
        assert!(destinations.lines().any(|l| l.starts_with(entry.schemes[0])), "{}", out.stdout);
        assert!(destinations.contains(entry.example), "{}", out.stdout);
    }
    assert!(destinations.contains("postgres:// postgresql://"), "{destinations}");
}

#[test]
fn duplicate_ids_are_reported() {
    let a: Arc<dyn Connector> = Arc::new(TestConnector);
    let b: Arc<dyn Connector> = Arc::new(TestConnector);
    let err = Registry::from_connectors([a, b]).err().expect("duplicate ids must be refused");
    assert!(err.message().contains("test-source"), "{err}");
}

#[tokio::test]
async fn unknown_connector_lists_known_ids() {
    let out = cli(&["spec", "nope"]).await;
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("no connector with id `nope`"), "{}", out.stderr);
    assert!(out.stderr.contains("test-source"), "{}", out.stderr);
}

#[tokio::test]
async fn spec_prints_the_schema_with_secret_marks() {
    let out = cli(&["spec", "test-source"]).await;
    assert_eq!(out.code, 0);
    let schema: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(schema["properties"]["api_key"]["x-secret"], true);
}

#[tokio::test]
async fn missing_required_field_names_field_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path =
        write(dir.path(), &format!("connector = \"test-source\"\n\n[config]\napi_key = \"{GOOD_KEY}\"\n"));
    let out = cli(&["check", "--config", &path]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("{path}:3: config.items: missing required field")),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn wrong_type_names_field_line_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        &format!(
            "connector = \"test-source\"\n[config]\napi_key = \"{GOOD_KEY}\"\nitems = 3\n\npage_size = \"ten\"\n"
        ),
    );
    let out = cli(&["check", "--config", &path]).await;
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains(&format!("{path}:6: config.page_size: \"ten\" is not of type \"integer\"")),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn unknown_field_names_field_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        &format!(
            "connector = \"test-source\"\n[config]\napi_key = \"{GOOD_KEY}\"\nitems = 3\npagesize = 5\n"
        ),
    );
    let out = cli(&["check", "--config", &path]).await;
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains(&format!("{path}:5: config.pagesize: unknown field")), "{}", out.stderr);
    assert!(out.stderr.contains("page_size"), "the known fields are listed: {}", out.stderr);
}

#[tokio::test]
async fn unknown_top_level_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "connector = \"test-source\"\ndestnation = \"x\"\n[config]\n");
    let out = cli(&["check", "--config", &path]).await;
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains(&format!("{path}:2: unknown key `destnation`")), "{}", out.stderr);
}

#[tokio::test]
async fn secret_from_env_reference() {
    let dir = tempfile::tempdir().unwrap();
    // Edition 2024 makes set_var unsafe and the workspace forbids unsafe code, so use a
    // variable cargo sets for every test process.
    let expected = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let path = write(
        dir.path(),
        "connector = \"test-source\"\n[config]\napi_key = { env = \"CARGO_MANIFEST_DIR\" }\nitems = 2\n",
    );
    let registry = connector_api::registry::registry().unwrap();
    let config = ConfigFile::load(std::path::Path::new(&path), &registry).unwrap();
    assert_eq!(config.config()["api_key"], expected.as_str());
    assert!(!format!("{config:?}").contains(&expected));

    let path = write(
        dir.path(),
        "connector = \"test-source\"\n[config]\napi_key = { env = \"HOST_TEST_UNSET_VAR\" }\nitems = 2\n",
    );
    let out = cli(&["check", "--config", &path]).await;
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains(&format!(
            "{path}:3: config.api_key: environment variable HOST_TEST_UNSET_VAR is not set"
        )),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn secret_from_file_reference_and_failed_check_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key.txt"), format!("{GOOD_KEY}\n")).unwrap();
    let path = write(
        dir.path(),
        "connector = \"test-source\"\n[config]\napi_key = { file = \"key.txt\" }\nitems = 2\n",
    );
    let out = cli(&["check", "--config", &path]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);

    std::fs::write(dir.path().join("key.txt"), "wrong-key").unwrap();
    let out = cli(&["check", "--config", &path]).await;
    assert_eq!(out.code, 4, "a failed step exits 4: {}", out.stdout);
    assert!(out.stdout.contains("FAILED"));
    assert!(!out.stdout.contains("wrong-key") && !out.stderr.contains("wrong-key"));
}

#[tokio::test]
async fn references_are_refused_for_non_secret_fields() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        &format!(
            "connector = \"test-source\"\n[config]\napi_key = \"{GOOD_KEY}\"\nitems = {{ env = \"X\" }}\n"
        ),
    );
    let out = cli(&["check", "--config", &path]).await;
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains(&format!("{path}:4: config.items: {{ env = … }}")), "{}", out.stderr);
}

#[tokio::test]
async fn debug_and_errors_never_show_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let registry = connector_api::registry::registry().unwrap();
    let path = write(
        dir.path(),
        &format!("connector = \"test-source\"\n[config]\napi_key = \"{GOOD_KEY}\"\nitems = 2\n"),
    );
    let config = ConfigFile::load(std::path::Path::new(&path), &registry).unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains(GOOD_KEY), "{debug}");
    assert!(debug.contains("**redacted**"), "{debug}");

    // A secret of the wrong type: the error names the field, not the value.
    let path = write(
        dir.path(),
        "connector = \"test-source\"\n[config]\napi_key = [\"canary-in-array\"]\nitems = 2\n",
    );
    let err = ConfigFile::load(std::path::Path::new(&path), &registry).unwrap_err();
    assert!(err.to_string().contains("config.api_key"), "{err}");
    assert!(!err.to_string().contains("canary-in-array"), "{err}");
    assert!(!format!("{err:?}").contains("canary-in-array"), "{err:?}");

    // An unterminated string: TOML's own error would quote the line.
    let path = write(
        dir.path(),
        "connector = \"test-source\"\n[config]\napi_key = \"canary-unterminated\nitems = 2\n",
    );
    let err = ConfigFile::load(std::path::Path::new(&path), &registry).unwrap_err();
    assert!(err.to_string().contains(":3: invalid TOML"), "{err}");
    assert!(!err.to_string().contains("canary-unterminated"), "{err}");
}

#[tokio::test]
async fn usage_errors_exit_2_and_help_exits_0() {
    assert_eq!(cli(&["frobnicate"]).await.code, 2);
    let help = cli(&["--help"]).await;
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("Exit codes"), "{}", help.stdout);
}

#[test]
fn instance_is_the_source_not_the_settings() {
    let dir = tempfile::tempdir().unwrap();
    let registry = connector_api::registry::registry().unwrap();
    let load = |text: &str| {
        let path = write(dir.path(), text);
        ConfigFile::load(std::path::Path::new(&path), &registry).unwrap()
    };
    let a = load("connector = \"test-source\"\n[config]\napi_key = \"key-one\"\nitems = 2\n");
    let rotated = load("connector = \"test-source\"\n[config]\napi_key = \"key-two\"\nitems = 2\n");
    let tuned =
        load("connector = \"test-source\"\n[config]\napi_key = \"key-one\"\nitems = 3\npage_size = 7\n");
    let named =
        load("connector = \"test-source\"\nname = \"prod\"\n[config]\napi_key = \"key-one\"\nitems = 2\n");
    let other = load(
        "connector = \"test-source\"\n[config]\napi_key = \"key-one\"\nitems = 2\ntenant = \"tenant-b\"\n",
    );
    assert_eq!(a.instance(), "test-source:tenant-a");
    assert_eq!(a.instance(), rotated.instance(), "a rotated key keeps the instance and its state");
    assert_eq!(a.instance(), tuned.instance(), "tuning settings keep the instance and its state");
    assert_eq!(a.instance(), named.instance(), "a name is a label, not the key");
    assert_eq!(named.name(), Some("prod"));
    assert_eq!(other.instance(), "test-source:tenant-b");
    assert_eq!(a.fingerprint(), rotated.fingerprint());
    assert_ne!(a.fingerprint(), tuned.fingerprint());
    assert!(!a.fingerprint().contains("key-one"));
}

//! Keeps the Kubernetes example in `deploy/kubernetes/` honest: every CronJob runs a
//! command line this binary accepts, on a config its ConfigMap holds and the host's loader
//! reads, with each secret the config names coming from a Kubernetes Secret; one CronJob per
//! tenant, never two runs of one CronJob at once, and only documented exit codes in its
//! failure policy.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::Parser;
use host::cli::{Cli, Command};
use host::config_file::ConfigFile;
use host::exit::Exit;
use qlik_connector as _;
use yaml_rust2::{Yaml, YamlLoader};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every document of every manifest in `deploy/kubernetes/`.
fn manifests() -> Vec<Yaml> {
    let dir = repo().join("deploy/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in {}", dir.display());
    files
        .iter()
        .flat_map(|f| {
            YamlLoader::load_from_str(&std::fs::read_to_string(f).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
        })
        .collect()
}

fn of_kind<'a>(docs: &'a [Yaml], kind: &str) -> Vec<&'a Yaml> {
    docs.iter().filter(|d| d["kind"].as_str() == Some(kind)).collect()
}

fn text(y: &Yaml) -> &str {
    y.as_str().unwrap_or_else(|| panic!("expected a string, got {y:?}"))
}

fn list(y: &Yaml) -> &[Yaml] {
    y.as_vec().map(Vec::as_slice).unwrap_or_default()
}

/// The `{ env = "…" }` variables a config's `[config]` table reads its secrets from.
fn env_secrets(toml_text: &str) -> BTreeSet<String> {
    let doc: toml::Table = toml_text.parse().unwrap();
    let config = doc["config"].as_table().unwrap();
    config.values().filter_map(|v| v.as_table()?.get("env")?.as_str().map(str::to_string)).collect()
}

#[test]
fn the_kubernetes_example_runs_what_the_binary_accepts() {
    let docs = manifests();
    let registry = connector_api::registry::registry().unwrap();

    // ConfigMap name -> file name -> TOML text; every config loads with the host's loader.
    let dir = tempfile::tempdir().unwrap();
    let mut maps: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for map in of_kind(&docs, "ConfigMap") {
        let name = text(&map["metadata"]["name"]).to_string();
        let files = map["data"].as_hash().unwrap();
        for (file, toml_text) in files {
            let (file, toml_text) = (text(file), text(toml_text));
            let path = dir.path().join(file);
            std::fs::write(&path, toml_text).unwrap();
            let config =
                ConfigFile::load_identity(&path, &registry).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert!(config.instance().starts_with("qlik-sense:"), "{file}: {}", config.instance());
            maps.entry(name.clone()).or_default().insert(file.to_string(), toml_text.to_string());
        }
    }
    assert!(!maps.is_empty(), "the example has no ConfigMap of tenant configs");

    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let documented: BTreeSet<i64> =
        [Exit::Usage, Exit::Auth, Exit::Source, Exit::Partial, Exit::Destination, Exit::Conflict]
            .map(|e| i64::from(e.code()))
            .into();
    let mut configs_run = BTreeSet::new();
    let cronjobs = of_kind(&docs, "CronJob");
    for job in &cronjobs {
        let name = text(&job["metadata"]["name"]);
        assert_eq!(job["spec"]["concurrencyPolicy"].as_str(), Some("Forbid"), "{name}");
        let spec = &job["spec"]["jobTemplate"]["spec"];
        for rule in list(&spec["podFailurePolicy"]["rules"]) {
            for code in list(&rule["onExitCodes"]["values"]) {
                let code = code.as_i64().unwrap();
                assert!(
                    documented.contains(&code),
                    "{name}: exit code {code} is not one connector-host documents"
                );
            }
        }
        let pod = &spec["template"]["spec"];
        let [container] = list(&pod["containers"]) else { panic!("{name}: one container") };
        let command: Vec<&str> = list(&container["command"]).iter().map(text).collect();
        let [binary] = command.as_slice() else { panic!("{name}: command is the binary alone: {command:?}") };
        assert!(
            dockerfile.contains(&format!("COPY --from=build /connector-host {binary}")),
            "{name}: the image puts the binary elsewhere"
        );

        let args: Vec<&str> = list(&container["args"]).iter().map(text).collect();
        let cli = Cli::try_parse_from(std::iter::once("connector-host").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let Command::Run(run) = cli.command else { panic!("{name}: runs `connector-host run`") };
        let dest = run.dest.unwrap_or_else(|| panic!("{name}: names its destination"));
        let dest = url::Url::parse(&dest).unwrap();
        assert_eq!(dest.scheme(), "postgres", "{name}: many hosts share a PostgreSQL hub");
        assert!(dest.password().is_none(), "{name}: the password comes from PGPASSWORD, not the URL");

        // Each --config is a file of a ConfigMap mounted at its folder.
        let env: BTreeMap<&str, &Yaml> = list(&container["env"])
            .iter()
            .map(|e| (text(&e["name"]), &e["valueFrom"]["secretKeyRef"]))
            .collect();
        assert!(!env["PGPASSWORD"].is_badvalue(), "{name}: PGPASSWORD from a Secret");
        for config in &run.config {
            let folder = config.parent().unwrap();
            let file = config.file_name().unwrap().to_str().unwrap();
            let mount = list(&container["volumeMounts"])
                .iter()
                .find(|m| Path::new(text(&m["mountPath"])) == folder)
                .unwrap_or_else(|| panic!("{name}: nothing is mounted at {}", folder.display()));
            let volume = list(&pod["volumes"])
                .iter()
                .find(|v| v["name"] == mount["name"])
                .unwrap_or_else(|| panic!("{name}: no volume {:?}", mount["name"]));
            let map = &maps[text(&volume["configMap"]["name"])];
            let toml_text = map.get(file).unwrap_or_else(|| panic!("{name}: the ConfigMap has no {file}"));
            for var in env_secrets(toml_text) {
                let secret = env
                    .get(var.as_str())
                    .unwrap_or_else(|| panic!("{name}: {file} reads {var}, which is not set"));
                assert!(!secret.is_badvalue(), "{name}: {var} comes from a Kubernetes Secret, not a literal");
            }
            configs_run.insert(file.to_string());
        }
    }
    let tenants: BTreeSet<String> = maps.values().flat_map(|m| m.keys().cloned()).collect();
    assert_eq!(configs_run, tenants, "one CronJob per tenant config");
    assert_eq!(cronjobs.len(), tenants.len(), "one CronJob per tenant config");
}

/// The production binary (`--no-default-features`, as the Dockerfile and the README's
/// `cargo install` build it) links neither the tests nor the simulator: `host` depends on
/// the simulator crate only through the `demo` feature, and on the tests crate only for
/// its own tests; the simulator crate itself knows no test code.
#[test]
fn the_production_binary_links_no_test_or_simulator_code() {
    let manifest = |path: &str| -> toml::Table {
        toml::from_str(&std::fs::read_to_string(repo().join(path)).unwrap()).unwrap()
    };
    let host = manifest("host/Cargo.toml");
    let deps = host["dependencies"].as_table().unwrap();
    assert!(!deps.contains_key("tests"), "host's [dependencies] name the tests crate");
    assert_eq!(deps["qlik-sim"].get("optional").and_then(toml::Value::as_bool), Some(true));
    let features = host["features"].as_table().unwrap();
    assert_eq!(features["demo"].as_array().unwrap(), &[toml::Value::from("dep:qlik-sim")]);
    let linked_by_default: Vec<&str> =
        features["default"].as_array().unwrap().iter().filter_map(toml::Value::as_str).collect();
    assert_eq!(linked_by_default, ["demo"], "only the demo pulls the simulator in");
    let sim = manifest("qlik-sim/Cargo.toml");
    assert!(!sim["dependencies"].as_table().unwrap().contains_key("tests"));
}

//! What the Airbyte and Singer tests share: the engines' own tools from PyPI (Airbyte's
//! protocol models, PyAirbyte, Singer targets), so our output is judged by the software that
//! consumes it in production; the simulated tenant's config as those engines pass it; and the
//! key digests of what they land, to compare with the simulator's ground truth.
//!
//! Each Python tool gets its own virtual environment, since their pins conflict (PyAirbyte
//! needs pydantic 2, `airbyte-protocol-models` pydantic 1, `target-jsonl` a 2018
//! `jsonschema`). A requirements file here pins every package, transitive ones too; its
//! environment is built once under `target/tmp/python/` and reused while the file and the
//! Python version are unchanged. Without `python3` (or without PyPI) the tests print why and
//! skip, except when `CI` is set, where they fail.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tests::digest::{KeyDigest, key_digest};
use tests::qlik_sim::Simulator;

/// A ready virtual environment.
pub struct Venv {
    dir: PathBuf,
}

impl Venv {
    /// An executable the environment installed (`python`, `target-jsonl` …).
    pub fn bin(&self, name: &str) -> PathBuf {
        self.dir.join("bin").join(name)
    }
}

/// This folder: requirements files and scripts.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/engines")
}

/// Skips (returns `None`, saying why) outside CI; fails when `CI` is set.
fn skip(reason: String) -> Option<Venv> {
    assert!(std::env::var_os("CI").is_none(), "CI is set but the Python tools are missing: {reason}");
    eprintln!("skipping: {reason}");
    None
}

/// The environment of `requirements` (`pyairbyte` for `pyairbyte.txt`), built when missing.
pub fn venv(requirements: &str) -> Option<Venv> {
    let python = std::env::var("DATAHUB_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let version = match Command::new(&python)
        .args(["-c", "import sys, venv, ensurepip; print(sys.version)"])
        .output()
    {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        Ok(out) => {
            return skip(format!(
                "{python} has no venv or pip: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Err(e) => {
            return skip(format!("cannot run {python} ({e}); set DATAHUB_TEST_PYTHON to a Python 3.11"));
        }
    };
    let file = dir().join(format!("{requirements}.txt"));
    let pins = std::fs::read(&file).unwrap();
    let hash = hex::encode(Sha256::new().chain_update(&pins).chain_update(version.as_bytes()).finalize());
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python");
    std::fs::create_dir_all(&root).unwrap();
    let venv = Venv { dir: root.join(format!("{requirements}-{}", &hash[..12])) };
    let done = venv.dir.join(".installed");
    // Tests in this and other test binaries build the same environments at once.
    let lock = std::fs::File::create(root.join(format!("{requirements}.lock"))).unwrap();
    lock.lock().unwrap();
    if done.exists() {
        return Some(venv);
    }
    let started = Instant::now();
    let _ = std::fs::remove_dir_all(&venv.dir);
    match Command::new(&python).arg("-m").arg("venv").arg(&venv.dir).output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            return skip(format!("{python} -m venv failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Err(e) => return skip(format!("cannot run {python} -m venv: {e}")),
    }
    let install = Command::new(venv.bin("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "--no-input", "-r"])
        .arg(&file)
        .env("PIP_DEFAULT_TIMEOUT", "60")
        .output();
    match install {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            let tail: Vec<&str> =
                std::str::from_utf8(&out.stderr).unwrap_or("").lines().rev().take(5).collect();
            return skip(format!("pip cannot install {}: {}", file.display(), tail.join(" / ")));
        }
        Err(e) => return skip(format!("cannot run pip: {e}")),
    }
    std::fs::write(&done, "").unwrap();
    eprintln!("installed {requirements} into {} in {:.0?}", venv.dir.display(), started.elapsed());
    Some(venv)
}

/// The `connector-host` binary under test.
pub const BINARY: &str = env!("CARGO_BIN_EXE_connector-host");

/// Writes the Qlik connector's config for `sim`, as Airbyte and Meltano pass it (JSON,
/// the key inline), into `dir`; returns its path.
pub fn qlik_config(dir: &Path, sim: &Simulator, api_key: &str) -> PathBuf {
    let path = dir.join("config.json");
    let config = json!({"tenant_url": sim.base_url(), "api_key": api_key, "requests_per_minute": 1_000_000});
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

/// The Qlik connector's streams and their primary keys.
pub fn qlik_streams() -> Vec<(String, Vec<String>)> {
    let qlik = connector_api::registry::find("qlik-sense").unwrap();
    qlik.static_catalog().unwrap().streams.into_iter().map(|s| (s.name, s.primary_key)).collect()
}

/// The key digest of `records`, each key value as the text the simulator's ground truth
/// uses (strings as they are).
pub fn digest<'a>(records: impl IntoIterator<Item = &'a Value>, key: &[String]) -> KeyDigest {
    key_digest(records.into_iter().map(|r| {
        key.iter()
            .map(|k| match &r[k] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
    }))
}

/// Asserts that what landed per stream (`landed`: stream name to key digest) is the
/// simulated tenant exactly: every stream, no row missing, none doubled.
pub fn assert_exact(sim: &Simulator, landed: &std::collections::BTreeMap<String, KeyDigest>, through: &str) {
    for (stream, _) in qlik_streams() {
        let truth = sim.ground_truth().stream(&stream);
        assert_eq!(landed.get(&stream), Some(truth), "{through}: stream {stream}");
    }
}

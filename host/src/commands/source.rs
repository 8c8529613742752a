//! What `airbyte` and `singer` share: a connector run as a source for another engine,
//! which schedules it, keeps its state and loads what it prints.
//!
//! Both engines hand over the config as a JSON file holding the connector's `config`
//! object with secrets inline. It is validated against the connector's spec like a TOML
//! file's `[config]`, and its secret values are registered before anything is printed, so
//! stdout (wrapped in a scrubbing writer) never shows one, whatever a source echoes.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use connector_api::{
    ConfiguredCatalog, ConfiguredStream, Connector, Error, ErrorKind, Message, Result, State, StreamEvent,
    SyncMode,
};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::write_err;
use crate::config_file::{CONFIG_FILE_LIMIT, ConfigFile, read_text_file};
use crate::exit::Exit;

/// The largest catalog or state file read: a catalog carries every stream's schema, so
/// it may be larger than a config, but never near this.
const INPUT_FILE_LIMIT: u64 = 64 * 1024 * 1024;

/// Loads the JSON config file at `path` for `connector`: parsed, secrets registered,
/// validated against the connector's spec.
pub(crate) fn load_config(connector: Arc<dyn Connector>, path: &Path) -> Result<ConfigFile> {
    let config: Value = read_json(path, "config", CONFIG_FILE_LIMIT)?;
    if !config.is_object() {
        return Err(Error::new(ErrorKind::Config, format!("{}: must be a JSON object", path.display()))
            .with_hint(
                "Give the connector's config object, e.g. {\"tenant_url\": \"…\", \"api_key\": \"…\"}",
            ));
    }
    ConfigFile::from_json(connector, config, None)
}

/// Reads the catalog or state file at `path` (`what` names it in errors) into `T`.
pub(crate) fn read_input<T: DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    read_json(path, what, INPUT_FILE_LIMIT)
}

/// Reads `path` as JSON of type `T`. Errors name the file and the place, never quote
/// its text, which may hold a secret.
fn read_json<T: DeserializeOwned>(path: &Path, what: &str, limit: u64) -> Result<T> {
    let text = read_text_file(path, limit).map_err(|e| {
        Error::new(ErrorKind::Config, format!("cannot read {what} file {}: {e}", path.display()))
    })?;
    let mut de = serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let at = e.path().to_string();
        let inner = e.into_inner();
        Error::new(
            ErrorKind::Config,
            format!(
                "{}:{}:{}: not a valid {what} file at `{at}`: {}",
                path.display(),
                inner.line(),
                inner.column(),
                classify(&inner)
            ),
        )
    })
}

/// What kind of JSON mistake `e` is, without the offending text.
fn classify(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "cannot read it",
        serde_json::error::Category::Syntax => "invalid JSON",
        serde_json::error::Category::Data => "a value has the wrong type or a field is missing",
        serde_json::error::Category::Eof => "the JSON ends early",
    }
}

/// Reads `catalog` with `config`, handing each message to `emit` as it arrives.
///
/// Returns the exit status of a read that ran to its end: 0 when no stream failed, 5
/// (partial) when some failed and others completed, else the first failure's code. A read
/// that ended early returns its error, after `emit` saw every message before it.
pub(crate) async fn read(
    config: &ConfigFile,
    catalog: &ConfiguredCatalog,
    state: &State,
    mut emit: impl FnMut(Message) -> Result<()>,
) -> Result<Exit> {
    let mut messages = config.connector().read(config.config(), catalog, state).await?;
    let mut failed: Option<ErrorKind> = None;
    let mut completed = 0;
    while let Some(message) = messages.next().await {
        let message = message?;
        if let Message::Status(status) = &message {
            match &status.event {
                StreamEvent::Failed { kind, .. } => failed = failed.or(Some(*kind)),
                StreamEvent::Completed { .. } => completed += 1,
                _ => {}
            }
        }
        emit(message)?;
    }
    Ok(match failed {
        None => Exit::Ok,
        Some(_) if completed > 0 => Exit::Partial,
        Some(kind) => Exit::from_kind(kind),
    })
}

/// Reads `stream` in `mode` when it supports it. A stream without a cursor asked to read
/// incrementally reads in full, as Airbyte's own sources do (PyAirbyte asks every stream
/// for `incremental`): everything is new to a read that has nothing to resume from.
pub(crate) fn set_mode(stream: &mut ConfiguredStream, mode: SyncMode) -> Result<()> {
    let supported = &stream.stream.supported_sync_modes;
    stream.sync_mode = match mode {
        _ if supported.contains(&mode) => mode,
        SyncMode::Incremental if supported.contains(&SyncMode::FullRefresh) => SyncMode::FullRefresh,
        _ => {
            let modes: Vec<&str> = supported.iter().map(|m| m.as_str()).collect();
            return Err(Error::new(
                ErrorKind::Config,
                format!("stream `{}` cannot be read in {} mode", stream.stream.name, mode.as_str()),
            )
            .with_context("field", "catalog")
            .with_hint(format!("It supports {}", modes.join(", "))));
        }
    };
    Ok(())
}

/// Writes `message` as one line in one write, so the scrubbing writer sees it whole.
pub(crate) fn emit(out: &mut (dyn Write + Send), message: &Value) -> Result<()> {
    let mut line = message.to_string();
    line.push('\n');
    out.write_all(line.as_bytes()).map_err(write_err)
}

//! The TOML config file: which connector, its `[config]`, optional `name` and
//! `destination`.
//!
//! ```toml
//! connector = "qlik-sense"
//! name = "production"            # optional: a label for people; rows are keyed by the tenant
//! destination = "sqlite:hub.db"  # optional: overridden by --dest
//! [config]
//! tenant_url = "https://acme.eu.qlikcloud.com"
//! api_key = { env = "QLIK_API_KEY" }   # or { file = "/run/secrets/qlik" }, or inline
//! ```
//!
//! The host resolves secret references, then validates the whole `[config]` against the
//! connector's `spec()` before the connector sees it, so every mistake is reported with
//! the file, line and field (`config.toml:7: config.page_size: "ten" is not of type
//! "integer"`). Values of secret fields are never echoed, and each is
//! [registered](connector_api::secret::register) so nothing the process writes can show
//! it, whatever a source echoes back.
//!
//! Config and secret files are read only when they are regular files of bounded size: a
//! FIFO would block forever and `/dev/zero` would fill memory.

use std::fmt;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use connector_api::registry::Registry;
use connector_api::{Connector, Error, ErrorKind, Result, secret};
use jsonschema::error::ValidationErrorKind;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use toml_edit::{Document, Item, TableLike};

/// Keys allowed at the top level of a config file.
const TOP_LEVEL_KEYS: [&str; 4] = ["connector", "name", "destination", "config"];

/// The largest config file read: far beyond any real config, far below trouble.
pub(crate) const CONFIG_FILE_LIMIT: u64 = 1024 * 1024;

/// The largest `{ file = … }` secret read: API keys and passwords are a few KiB at most.
const SECRET_FILE_LIMIT: u64 = 64 * 1024;

/// A loaded, secret-resolved and validated connector configuration.
#[derive(Clone)]
pub struct ConfigFile {
    label: String,
    connector: Arc<dyn Connector>,
    name: Option<String>,
    destination: Option<String>,
    config: Value,
    schema: Value,
    identity: String,
}

impl fmt::Debug for ConfigFile {
    /// Shows secret fields redacted: this is what may end up in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigFile")
            .field("file", &self.label)
            .field("connector", &self.connector.metadata().id)
            .field("name", &self.name)
            .field("destination", &self.destination.as_deref().map(crate::sink::redact_destination))
            .field("config", &self.redacted())
            .finish()
    }
}

/// Whether a config's secret fields are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Secrets {
    /// Read each secret (inline, `{ env }`, `{ file }`): to run or check.
    Resolve,
    /// Put [`UNRESOLVED`] in their place: to find the instance only.
    Skip,
}

/// What an unread secret field holds in a config loaded with [`ConfigFile::load_identity`].
const UNRESOLVED: &str = "(not read)";

impl ConfigFile {
    /// Reads and validates the config file at `path`, finding its connector in `registry`.
    pub fn load(path: &Path, registry: &Registry) -> Result<Self> {
        Self::load_with(path, registry, Secrets::Resolve)
    }

    /// Reads the config file at `path` for what identifies its instance, leaving secret
    /// fields unresolved (and unread): `state show|reset` need to know whose
    /// checkpoints to touch, not the API key.
    pub fn load_identity(path: &Path, registry: &Registry) -> Result<Self> {
        Self::load_with(path, registry, Secrets::Skip)
    }

    fn load_with(path: &Path, registry: &Registry, secrets: Secrets) -> Result<Self> {
        let text = read_text_file(path, CONFIG_FILE_LIMIT).map_err(|e| {
            Error::new(ErrorKind::Config, format!("cannot read config file {}: {e}", path.display()))
                .with_hint("Pass the path of a TOML file with `connector = \"<id>\"` and a [config] table")
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse_with(&text, &path.display().to_string(), &base, registry, secrets)
    }

    /// Parses config file `text`; `label` names the file in errors and `base` is the
    /// directory `{ file = "…" }` references are relative to.
    pub fn parse(text: &str, label: &str, base: &Path, registry: &Registry) -> Result<Self> {
        Self::parse_with(text, label, base, registry, Secrets::Resolve)
    }

    fn parse_with(
        text: &str,
        label: &str,
        base: &Path,
        registry: &Registry,
        secrets_mode: Secrets,
    ) -> Result<Self> {
        let doc = Document::parse(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            let at = line.map(|l| format!("{label}:{l}")).unwrap_or_else(|| label.to_string());
            // The error's own Display quotes the offending line, which may hold a secret.
            Error::new(ErrorKind::Config, format!("{at}: invalid TOML: {}", e.message().trim_end()))
        })?;
        let root = doc.as_table();
        let at = |span: Option<Range<usize>>| match span {
            Some(s) => format!("{label}:{}", line_of(text, s.start)),
            None => label.to_string(),
        };
        for (key, _) in root.iter() {
            if !TOP_LEVEL_KEYS.contains(&key) {
                let span = root.key(key).and_then(|k| k.span());
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("{}: unknown key `{key}`; allowed: {}", at(span), TOP_LEVEL_KEYS.join(", ")),
                )
                .with_context("field", key));
            }
        }
        let string_key = |key: &str| -> Result<Option<String>> {
            match root.get(key) {
                None => Ok(None),
                Some(item) => item.as_str().map(|s| Some(s.to_string())).ok_or_else(|| {
                    Error::new(ErrorKind::Config, format!("{}: `{key}` must be a string", at(item.span())))
                        .with_context("field", key.to_string())
                }),
            }
        };
        let Some(id) = string_key("connector")? else {
            let known: Vec<&str> = registry.all().iter().map(|c| c.metadata().id).collect();
            return Err(Error::new(ErrorKind::Config, format!("{label}: missing `connector = \"<id>\"`"))
                .with_context("field", "connector")
                .with_hint(format!("Known connectors: {}", known.join(", "))));
        };
        let connector = registry.find(&id).map_err(|e| {
            let span = root.get("connector").and_then(Item::span);
            Error::new(ErrorKind::Config, format!("{}: {}", at(span), e.message()))
                .with_context("field", "connector")
                .with_hint(e.hint().unwrap_or_default().to_string())
        })?;
        let name = string_key("name")?;
        let destination = string_key("destination")?;
        let schema = connector.spec().config_schema;

        let config_item = root.get("config");
        let config_table = match config_item {
            None => None,
            Some(item) => Some(item.as_table_like().ok_or_else(|| {
                Error::new(ErrorKind::Config, format!("{}: `config` must be a table", at(item.span())))
                    .with_context("field", "config")
            })?),
        };
        let secrets = secret::secret_fields(&schema);
        let mut config = Map::new();
        if let Some(table) = config_table {
            for (key, item) in table.iter() {
                let span = table.key(key).and_then(|k| k.span()).or_else(|| item.span());
                let field_error = |msg: &str| {
                    Error::new(ErrorKind::Config, format!("{}: config.{key}: {msg}", at(span.clone())))
                        .with_context("field", format!("config.{key}"))
                };
                let is_secret = secrets.iter().any(|s| s == key);
                let value = match secret_reference(item) {
                    _ if is_secret && secrets_mode == Secrets::Skip => Value::String(UNRESOLVED.into()),
                    Some(_) if !is_secret => {
                        return Err(field_error(
                            "{ env = … } and { file = … } references are only resolved for secret fields; write the value inline",
                        ));
                    }
                    Some(reference) => {
                        Value::String(reference.and_then(|r| r.resolve(base)).map_err(|m| field_error(&m))?)
                    }
                    None => item_to_json(item).map_err(|m| field_error(&m))?,
                };
                if is_secret && value.as_str().is_some_and(|secret| secret.trim().is_empty()) {
                    return Err(field_error(
                        "is blank; give the secret itself, or { env = \"VAR\" } or { file = \"PATH\" }",
                    ));
                }
                config.insert(key.to_string(), value);
            }
        }
        let config = Value::Object(config);
        register_secrets(&schema, &config);
        let locate = |pointer: &str| -> Option<usize> {
            let item = config_item?;
            locate_pointer(item, pointer).map(|off| line_of(text, off))
        };
        validate(&schema, &config, label, &locate)?;
        let identity = connector.source_identity(&config)?;
        Ok(ConfigFile { label: label.to_string(), connector, name, destination, config, schema, identity })
    }

    /// A config given as JSON rather than a file (the demo builds one), validated the
    /// same way, its secret fields registered the same way.
    pub fn from_json(connector: Arc<dyn Connector>, config: Value, name: Option<String>) -> Result<Self> {
        let schema = connector.spec().config_schema;
        register_secrets(&schema, &config);
        validate(&schema, &config, "config", &|_| None)?;
        let identity = connector.source_identity(&config)?;
        Ok(ConfigFile {
            label: "config".into(),
            connector,
            name,
            destination: None,
            config,
            schema,
            identity,
        })
    }

    /// The connector this config is for.
    pub fn connector(&self) -> &Arc<dyn Connector> {
        &self.connector
    }

    /// The connector's id.
    pub fn connector_id(&self) -> &'static str {
        self.connector.metadata().id
    }

    /// The resolved config to hand to the connector. Contains secrets: never print it.
    pub fn config(&self) -> &Value {
        &self.config
    }

    /// The config with secret fields redacted, safe to print or store.
    pub fn redacted(&self) -> Value {
        secret::redact(&self.schema, &self.config)
    }

    /// The `destination` the file names, if any.
    pub fn destination(&self) -> Option<&str> {
        self.destination.as_deref()
    }

    /// SHA-256 over the connector id and the config without its secret fields: the same
    /// tenant read with a rotated key keeps its identity (and its state).
    pub fn fingerprint(&self) -> String {
        let mut without_secrets = self.config.clone();
        if let Some(obj) = without_secrets.as_object_mut() {
            for field in secret::secret_fields(&self.schema) {
                obj.remove(&field);
            }
        }
        // serde_json's default map is sorted, so this serialisation is canonical.
        let canonical = serde_json::json!({"connector": self.connector_id(), "config": without_secrets});
        hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
    }

    /// The connector instance: `<connector id>:<source identity>`
    /// (`qlik-sense:acme.eu.qlikcloud.com`). Every stored row and checkpoint is keyed by
    /// it, so it names whose data this is and nothing else: a rotated key, a new timeout
    /// or another page size keeps it, another tenant changes it.
    pub fn instance(&self) -> String {
        format!("{}:{}", self.connector_id(), self.identity)
    }

    /// The file's optional `name`: a label for people; no row or checkpoint is keyed by it.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Where the config came from, for messages.
    pub fn label(&self) -> &str {
        &self.label
    }
}

/// Registers the value of every secret field of `config` (see
/// [`connector_api::secret::register`]), so nothing the process writes can show it.
fn register_secrets(schema: &Value, config: &Value) {
    for field in secret::secret_fields(schema) {
        if let Some(Value::String(value)) = config.get(&field) {
            secret::register(value);
        }
    }
}

/// A `{ env = "VAR" }` or `{ file = "/path" }` secret reference.
enum SecretRef {
    Env(String),
    File(String),
}

impl SecretRef {
    /// Reads the secret. Errors name the variable or file, never a value.
    fn resolve(&self, base: &Path) -> std::result::Result<String, String> {
        let (value, source) = match self {
            SecretRef::Env(var) => {
                let value = std::env::var(var).map_err(|e| match e {
                    std::env::VarError::NotPresent => format!("environment variable {var} is not set"),
                    std::env::VarError::NotUnicode(_) => {
                        format!(
                            "environment variable {var} is not valid UTF-8 text; set it to the secret itself"
                        )
                    }
                })?;
                (value, format!("environment variable {var}"))
            }
            SecretRef::File(file) => {
                let path: PathBuf = base.join(file);
                let text = read_text_file(&path, SECRET_FILE_LIMIT)
                    .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?;
                (text.trim_end_matches(['\n', '\r']).to_string(), format!("secret file {}", path.display()))
            }
        };
        if value.trim().is_empty() {
            let what = if value.is_empty() { "is empty" } else { "holds only whitespace" };
            return Err(format!("{source} {what}"));
        }
        Ok(value)
    }
}

/// Reads `path` as UTF-8 text if it is a regular file of at most `limit` bytes. A FIFO,
/// a device or a directory is refused before it is opened, since reading one could block
/// forever or never end.
pub(crate) fn read_text_file(path: &Path, limit: u64) -> std::result::Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        let what = if meta.is_dir() { "a directory" } else { "a device, FIFO or socket" };
        return Err(format!("it is {what}, not a regular file"));
    }
    let too_large = || format!("it is larger than {} KiB", limit / 1024);
    if meta.len() > limit {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(limit + 1).read_to_end(&mut bytes))
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_string())
}

/// The secret reference `item` is, if it is a table with an `env` or `file` key: the
/// reference, or why it is not a valid one.
fn secret_reference(item: &Item) -> Option<std::result::Result<SecretRef, String>> {
    let table = item.as_table_like()?;
    let (env, file) = (table.get("env"), table.get("file"));
    if env.is_none() && file.is_none() {
        return None;
    }
    let usage = "a secret reference is { env = \"VAR\" } or { file = \"PATH\" }";
    if env.is_some() && file.is_some() {
        return Some(Err(format!("{usage}, not both")));
    }
    if table.len() != 1 {
        let keys: Vec<&str> = table.iter().map(|(k, _)| k).collect();
        return Some(Err(format!("{usage} and nothing else; found keys {}", keys.join(", "))));
    }
    Some(match (env.and_then(Item::as_str), file.and_then(Item::as_str)) {
        (Some(var), _) => Ok(SecretRef::Env(var.to_string())),
        (_, Some(path)) => Ok(SecretRef::File(path.to_string())),
        _ => Err(format!("{usage}: the variable name or path must be a string")),
    })
}

fn item_to_json(item: &Item) -> std::result::Result<Value, String> {
    match item {
        Item::None => Ok(Value::Null),
        Item::Value(v) => value_to_json(v),
        Item::Table(t) => table_to_json(t),
        Item::ArrayOfTables(a) => {
            a.iter().map(|t| table_to_json(t)).collect::<std::result::Result<_, _>>().map(Value::Array)
        }
    }
}

fn table_to_json(table: &dyn TableLike) -> std::result::Result<Value, String> {
    let mut map = Map::new();
    for (k, v) in table.iter() {
        map.insert(k.to_string(), item_to_json(v)?);
    }
    Ok(Value::Object(map))
}

fn value_to_json(value: &toml_edit::Value) -> std::result::Result<Value, String> {
    use toml_edit::Value as V;
    Ok(match value {
        V::String(s) => Value::String(s.value().clone()),
        V::Integer(i) => Value::from(*i.value()),
        V::Float(f) => serde_json::Number::from_f64(*f.value())
            .map(Value::Number)
            .ok_or_else(|| "nan and inf are not valid numbers here".to_string())?,
        V::Boolean(b) => Value::Bool(*b.value()),
        V::Datetime(d) => Value::String(d.value().to_string()),
        V::Array(a) => Value::Array(a.iter().map(value_to_json).collect::<std::result::Result<_, _>>()?),
        V::InlineTable(t) => table_to_json(t)?,
    })
}

/// The byte offset of the TOML element a JSON pointer (relative to `[config]`) names:
/// the deepest element that exists, so a missing field points at its parent table.
fn locate_pointer(config: &Item, pointer: &str) -> Option<usize> {
    let mut offset = config.span().map(|s| s.start);
    let mut current: &Item = config;
    let mut value_owner: Option<&toml_edit::Value> = None;
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if let Some(v) = value_owner {
            let next = match v {
                toml_edit::Value::Array(a) => segment.parse::<usize>().ok().and_then(|i| a.get(i)),
                toml_edit::Value::InlineTable(t) => t.get(&segment),
                _ => None,
            };
            let Some(next) = next else { break };
            offset = next.span().map(|s| s.start).or(offset);
            value_owner = Some(next);
            continue;
        }
        if let Some(table) = current.as_table_like() {
            let Some((key, item)) = table.get_key_value(&segment) else { break };
            offset = key.span().or_else(|| item.span()).map(|s| s.start).or(offset);
            current = item;
        } else if let Some(toml_edit::Value::Array(a)) = current.as_value() {
            let Some(next) = segment.parse::<usize>().ok().and_then(|i| a.get(i)) else { break };
            offset = next.span().map(|s| s.start).or(offset);
            value_owner = Some(next);
        } else {
            break;
        }
    }
    offset
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|b| **b == b'\n').count() + 1
}

/// `/streams/2/name` → `config.streams[2].name`.
fn field_path(pointer: &str) -> String {
    let mut out = String::from("config");
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if segment.parse::<usize>().is_ok() {
            out.push_str(&format!("[{segment}]"));
        } else {
            out.push('.');
            out.push_str(&segment);
        }
    }
    out
}

/// Validates `config` against the connector's schema, reporting every problem on its
/// own line as `label:line: config.field: reason`.
fn validate(
    schema: &Value,
    config: &Value,
    label: &str,
    locate: &dyn Fn(&str) -> Option<usize>,
) -> Result<()> {
    let validator = jsonschema::validator_for(schema).map_err(|e| {
        Error::internal(format!("the connector's config schema is not valid JSON Schema: {}", e.masked()))
    })?;
    let secrets = secret::secret_fields(schema);
    let known: Vec<String> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    let mut problems: Vec<(String, String)> = Vec::new();
    for error in validator.iter_errors(config) {
        let pointer = error.instance_path.as_str().to_string();
        match &error.kind {
            ValidationErrorKind::Required { property } => {
                let prop = property.as_str().unwrap_or_default();
                let at = position(label, locate(&pointer));
                problems.push((
                    format!("{pointer}/{prop}"),
                    format!("{at}: {}.{prop}: missing required field", field_path(&pointer)),
                ));
            }
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                for prop in unexpected {
                    let child = format!("{pointer}/{prop}");
                    let at = position(label, locate(&child));
                    let hint = if pointer.is_empty() && !known.is_empty() {
                        format!("; known fields: {}", known.join(", "))
                    } else {
                        String::new()
                    };
                    problems
                        .push((child.clone(), format!("{at}: {}: unknown field{hint}", field_path(&child))));
                }
            }
            _ => {
                let top = pointer.split('/').nth(1).unwrap_or_default();
                let reason = if secrets.iter().any(|s| s == top) {
                    error.masked().to_string()
                } else {
                    error.to_string()
                };
                let at = position(label, locate(&pointer));
                problems.push((pointer.clone(), format!("{at}: {}: {reason}", field_path(&pointer))));
            }
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let field = field_path(&problems[0].0);
    let message = problems.into_iter().map(|(_, m)| m).collect::<Vec<_>>().join("\n");
    Err(Error::new(ErrorKind::Config, message).with_context("field", field).with_hint(
        "Compare the file with `connector-host spec <connector>` or `connector-host docs <connector>`",
    ))
}

fn position(label: &str, line: Option<usize>) -> String {
    match line {
        Some(l) => format!("{label}:{l}"),
        None => label.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_read_like_toml() {
        assert_eq!(field_path(""), "config");
        assert_eq!(field_path("/page_size"), "config.page_size");
        assert_eq!(field_path("/streams/2/name"), "config.streams[2].name");
    }

    #[test]
    fn pointers_map_to_lines() {
        let text = "connector = \"x\"\n[config]\na = 1\nb = [1, 2,\n  3]\n";
        let doc = Document::parse(text).unwrap();
        let config = doc.as_table().get("config").unwrap();
        assert_eq!(locate_pointer(config, "/a").map(|o| line_of(text, o)), Some(3));
        assert_eq!(locate_pointer(config, "/b/2").map(|o| line_of(text, o)), Some(5));
        assert_eq!(locate_pointer(config, "/missing").map(|o| line_of(text, o)), Some(2));
    }
}

//! `connector-host airbyte --connector ID spec|check|discover|read`: every registered
//! connector as an Airbyte source, so Airbyte (or PyAirbyte) schedules it and loads what
//! it reads, with our connector code unchanged.
//!
//! Messages follow the Airbyte protocol: one JSON object per line on stdout (SPEC,
//! CONNECTION_STATUS, CATALOG, RECORD, per-stream STATE, LOG, TRACE). Errors are TRACE
//! messages of type ERROR with a failure type Airbyte acts on (`config_error` asks the
//! user to fix the config; `transient_error` is retried); streams report STARTED, RUNNING,
//! COMPLETE or INCOMPLETE as TRACE stream statuses. Stdout is scrubbed of every secret the
//! config holds (see [`super::source`]).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use connector_api::registry::Registry;
use connector_api::{
    Catalog, CheckStatus, ConfiguredCatalog, Connector, Error, ErrorKind, LogLevel, Message, Result, State,
    StreamDescriptor, StreamEvent, SyncMode,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::source;
use crate::cli::{AirbyteArgs, AirbyteCommand};
use crate::exit::Exit;

/// Runs one Airbyte command. Every failure becomes a TRACE error on stdout, where
/// Airbyte looks for it, and exits with its documented code.
pub async fn airbyte(registry: &Registry, args: AirbyteArgs, out: &mut (dyn Write + Send)) -> Result<Exit> {
    let mut messages = Messages { out, streams: BTreeMap::new() };
    match messages.run(registry, args).await {
        Ok(exit) => Ok(exit),
        Err(e) => {
            messages.error(&e, None)?;
            Ok(Exit::from_kind(e.kind()))
        }
    }
}

/// A stream of a read, as far as its Airbyte stream statuses go.
#[derive(Default)]
struct Progress {
    /// RUNNING was sent (at the first record).
    running: bool,
    /// COMPLETE or INCOMPLETE was sent.
    ended: bool,
    /// Records since the stream's last STATE, for the state's `sourceStats`.
    since_state: u64,
}

/// Writes Airbyte messages, one JSON object per line, and follows each stream's status.
struct Messages<'a> {
    out: &'a mut (dyn Write + Send),
    streams: BTreeMap<String, Progress>,
}

impl Messages<'_> {
    async fn run(&mut self, registry: &Registry, args: AirbyteArgs) -> Result<Exit> {
        let connector = registry.find(&args.connector)?;
        match args.command {
            AirbyteCommand::Spec => self.spec(connector.as_ref())?,
            AirbyteCommand::Check { config } => self.check(connector, &config).await?,
            AirbyteCommand::Discover { config } => {
                let config = source::load_config(connector, &config)?;
                let catalog = config.connector().discover(config.config()).await?;
                self.catalog(&catalog)?;
            }
            AirbyteCommand::Read { config, catalog, state } => {
                return self.read(connector, &config, &catalog, state.as_deref()).await;
            }
        }
        Ok(Exit::Ok)
    }

    fn emit(&mut self, message: Value) -> Result<()> {
        source::emit(self.out, &message)
    }

    fn spec(&mut self, connector: &dyn Connector) -> Result<()> {
        let mut spec = json!({"connectionSpecification": airbyte_schema(connector.spec().config_schema)});
        let documentation = connector.metadata().documentation;
        if documentation.starts_with("https://") || documentation.starts_with("http://") {
            spec["documentationUrl"] = json!(documentation);
        }
        self.emit(json!({"type": "SPEC", "spec": spec}))
    }

    /// Prints a CONNECTION_STATUS whatever happens: a config that cannot even be
    /// attempted fails the check like a rejected key does, and Airbyte shows the message.
    async fn check(&mut self, connector: std::sync::Arc<dyn Connector>, path: &Path) -> Result<()> {
        let report = match source::load_config(connector, path) {
            Ok(config) => config.connector().check(config.config()).await,
            Err(e) => Err(e),
        };
        let (status, message) = match report {
            Ok(report) => {
                let passed = report.passed();
                let shown = report
                    .steps
                    .iter()
                    .filter(|s| passed || s.status == CheckStatus::Failed)
                    .map(|s| format!("{}: {}", s.name, s.detail()))
                    .collect::<Vec<_>>()
                    .join("; ");
                (if passed { "SUCCEEDED" } else { "FAILED" }, shown)
            }
            Err(e) => ("FAILED", e.to_string()),
        };
        self.emit(
            json!({"type": "CONNECTION_STATUS", "connectionStatus": {"status": status, "message": message}}),
        )
    }

    fn catalog(&mut self, catalog: &Catalog) -> Result<()> {
        let streams: Vec<Value> = catalog.streams.iter().map(airbyte_stream).collect();
        self.emit(json!({"type": "CATALOG", "catalog": {"streams": streams}}))
    }

    async fn read(
        &mut self,
        connector: std::sync::Arc<dyn Connector>,
        config: &Path,
        catalog: &Path,
        state: Option<&Path>,
    ) -> Result<Exit> {
        let config = source::load_config(connector, config)?;
        let discovered = config.connector().discover(config.config()).await?;
        let configured = configure(&discovered, source::read_input(catalog, "catalog")?)?;
        let state = match state {
            Some(path) => resume_state(source::read_input(path, "state")?)?,
            None => State::default(),
        };
        let read = source::read(&config, &configured, &state, |message| self.message(message)).await;
        if read.is_err() {
            // The read ended early: every stream still going ends with it.
            let open: Vec<String> =
                self.streams.iter().filter(|(_, p)| !p.ended).map(|(name, _)| name.clone()).collect();
            for stream in open {
                self.stream_status(&stream, "INCOMPLETE")?;
            }
        }
        read
    }

    fn message(&mut self, message: Message) -> Result<()> {
        match message {
            Message::Record(record) => {
                let progress = self.streams.entry(record.stream.clone()).or_default();
                progress.since_state += 1;
                if !progress.running {
                    progress.running = true;
                    self.stream_status(&record.stream, "RUNNING")?;
                }
                self.emit(json!({
                    "type": "RECORD",
                    "record": {"stream": record.stream, "data": record.data, "emitted_at": now_ms()},
                }))
            }
            Message::State(checkpoint) => {
                let records = std::mem::take(
                    &mut self.streams.entry(checkpoint.stream.clone()).or_default().since_state,
                );
                self.emit(json!({
                    "type": "STATE",
                    "state": {
                        "type": "STREAM",
                        "stream": {"stream_descriptor": {"name": checkpoint.stream}, "stream_state": checkpoint.value},
                        "sourceStats": {"recordCount": records as f64},
                    },
                }))
            }
            Message::Log(log) => self.log(log.level, &log.message),
            Message::Status(status) => {
                if let Some(error) = status.event.error() {
                    self.streams.entry(status.stream.clone()).or_default().ended = true;
                    self.error(&error, Some(&status.stream))?;
                    return self.stream_status(&status.stream, "INCOMPLETE");
                }
                match status.event {
                    StreamEvent::Started => {
                        self.streams.entry(status.stream.clone()).or_default();
                        self.stream_status(&status.stream, "STARTED")
                    }
                    StreamEvent::Completed { .. } => {
                        self.streams.entry(status.stream.clone()).or_default().ended = true;
                        self.stream_status(&status.stream, "COMPLETE")
                    }
                    StreamEvent::Retrying { reason, wait } => self.log(
                        LogLevel::Warn,
                        &format!("{}: retrying in {:.1}s after {reason}", status.stream, wait.as_secs_f64()),
                    ),
                    // Paging and throttling are progress-bar detail, not news for Airbyte.
                    _ => Ok(()),
                }
            }
        }
    }

    fn log(&mut self, level: LogLevel, message: &str) -> Result<()> {
        let level = match level {
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
        };
        self.emit(json!({"type": "LOG", "log": {"level": level, "message": message}}))
    }

    fn stream_status(&mut self, stream: &str, status: &str) -> Result<()> {
        self.emit(json!({
            "type": "TRACE",
            "trace": {
                "type": "STREAM_STATUS",
                "emitted_at": now_ms() as f64,
                "stream_status": {"stream_descriptor": {"name": stream}, "status": status},
            },
        }))
    }

    /// A TRACE error: the message an operator reads, the error's kind and context for
    /// whoever debugs it, and the failure type Airbyte decides on.
    fn error(&mut self, error: &Error, stream: Option<&str>) -> Result<()> {
        let mut detail = json!({
            "message": error.to_string(),
            "internal_message": format!("{} error: {}", error.kind(), error.message()),
            "failure_type": failure_type(error.kind()),
        });
        if let Some(stream) = stream {
            detail["stream_descriptor"] = json!({"name": stream});
        }
        self.emit(json!({
            "type": "TRACE",
            "trace": {"type": "ERROR", "emitted_at": now_ms() as f64, "error": detail},
        }))
    }
}

/// Airbyte's failure type for an error of `kind`: what the user must fix, what a retry
/// may cure, and everything else.
fn failure_type(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Config | ErrorKind::Auth | ErrorKind::Permission | ErrorKind::NotFound => "config_error",
        ErrorKind::RateLimited | ErrorKind::Transient | ErrorKind::Interrupted => "transient_error",
        _ => "system_error",
    }
}

/// Our config schema with `airbyte_secret: true` beside every field it marks secret, so
/// Airbyte masks them in its UI and logs.
fn airbyte_schema(mut schema: Value) -> Value {
    if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        for property in properties.values_mut() {
            if connector_api::secret::is_secret(property) {
                property["airbyte_secret"] = json!(true);
            }
        }
    }
    schema
}

/// A stream as Airbyte's catalog describes it. Cursors and primary keys are the
/// connector's own, so they are source-defined.
fn airbyte_stream(stream: &StreamDescriptor) -> Value {
    let modes: Vec<&str> = stream.supported_sync_modes.iter().map(|m| m.as_str()).collect();
    let mut out = json!({
        "name": stream.name,
        "json_schema": stream.json_schema,
        "supported_sync_modes": modes,
        "source_defined_cursor": stream.cursor_field.is_some(),
        "source_defined_primary_key": stream.primary_key.iter().map(|k| [k]).collect::<Vec<_>>(),
    });
    if let Some(cursor) = &stream.cursor_field {
        out["default_cursor_field"] = json!([cursor]);
    }
    out
}

/// The part of Airbyte's configured catalog a read needs.
#[derive(Deserialize)]
struct AirbyteConfiguredCatalog {
    streams: Vec<AirbyteConfiguredStream>,
}

#[derive(Deserialize)]
struct AirbyteConfiguredStream {
    stream: AirbyteStreamName,
    sync_mode: SyncMode,
}

#[derive(Deserialize)]
struct AirbyteStreamName {
    name: String,
}

/// The streams `configured` selects, described as the connector discovered them (a
/// caller's copy of a schema or key never overrides the connector's), each in the sync
/// mode asked for.
fn configure(discovered: &Catalog, configured: AirbyteConfiguredCatalog) -> Result<ConfiguredCatalog> {
    let selection: Vec<String> = configured.streams.iter().map(|s| s.stream.name.clone()).collect();
    let mut catalog = discovered.configure(Some(&selection), false)?;
    for (chosen, asked) in catalog.streams.iter_mut().zip(&configured.streams) {
        source::set_mode(chosen, asked.sync_mode)?;
    }
    Ok(catalog)
}

/// Milliseconds since the Unix epoch: when a message was emitted.
fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// One message of Airbyte's input state: only per-stream states are ours (this source
/// never emits global or legacy ones).
#[derive(Deserialize)]
struct AirbyteStateMessage {
    #[serde(rename = "type")]
    kind: Option<String>,
    stream: Option<AirbyteStreamState>,
}

#[derive(Deserialize)]
struct AirbyteStreamState {
    stream_descriptor: AirbyteStreamName,
    #[serde(default)]
    stream_state: Value,
}

/// The checkpoints per stream in Airbyte's input state: the list of the last STATE
/// message of each stream.
fn resume_state(messages: Vec<AirbyteStateMessage>) -> Result<State> {
    let mut state = State::default();
    for message in messages {
        match (message.kind.as_deref(), message.stream) {
            (None | Some("STREAM"), Some(stream)) => {
                state.set(stream.stream_descriptor.name, stream.stream_state)
            }
            (kind, _) => {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!(
                        "state: a {} state is not this source's; it emits STREAM states only",
                        kind.unwrap_or("untyped")
                    ),
                )
                .with_context("field", "state"));
            }
        }
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_fields_are_marked_for_airbyte() {
        let schema = json!({"properties": {
            "key": {"type": "string", "writeOnly": true, "x-secret": true},
            "url": {"type": "string"},
        }});
        let marked = airbyte_schema(schema);
        assert_eq!(marked["properties"]["key"]["airbyte_secret"], json!(true));
        assert!(marked["properties"]["url"].get("airbyte_secret").is_none());
    }

    #[test]
    fn configured_catalog_keeps_the_connectors_streams_and_the_asked_modes() {
        let discovered = Catalog {
            streams: vec![StreamDescriptor {
                name: "events".into(),
                description: String::new(),
                json_schema: json!({"type": "object"}),
                primary_key: vec!["seq".into()],
                cursor_field: Some("seq".into()),
                supported_sync_modes: vec![SyncMode::Incremental, SyncMode::FullRefresh],
            }],
        };
        let asked = |mode: &str| {
            serde_json::from_value(json!({"streams": [{
                "stream": {"name": "events", "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
                "sync_mode": mode, "destination_sync_mode": "append",
            }]}))
            .unwrap()
        };
        let catalog = configure(&discovered, asked("full_refresh")).unwrap();
        assert_eq!(catalog.streams[0].sync_mode, SyncMode::FullRefresh);
        assert_eq!(catalog.streams[0].stream, discovered.streams[0]);
        let unknown = json!({"streams": [{"stream": {"name": "nope"}, "sync_mode": "incremental"}]});
        let err = configure(&discovered, serde_json::from_value(unknown).unwrap()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
    }

    #[test]
    fn input_state_is_per_stream() {
        let messages = serde_json::from_value(json!([
            {"type": "STREAM", "stream": {"stream_descriptor": {"name": "events"}, "stream_state": {"seq": 4}}},
        ]))
        .unwrap();
        assert_eq!(resume_state(messages).unwrap().get("events"), Some(&json!({"seq": 4})));
        let global = serde_json::from_value(json!([{"type": "GLOBAL", "global": {}}])).unwrap();
        assert_eq!(resume_state(global).unwrap_err().kind(), ErrorKind::Config);
    }
}

//! `connector-host singer --connector ID --config F [--discover | --catalog C] [--state S]`:
//! every registered connector as a Singer tap, so Meltano (or any Singer target piped to
//! it) loads what it reads.
//!
//! `--discover` prints the Singer catalog: per stream its `tap_stream_id`, schema and
//! metadata (`selected`, `table-key-properties`, `valid-replication-keys`,
//! `forced-replication-method` for streams with one mode). A sync prints a SCHEMA message
//! per selected stream, with its key and bookmark properties, then RECORD messages and, after
//! each checkpoint, a STATE message holding every stream's bookmark. The catalog passed
//! back selects streams, their `replication-method` and the fields to send; the last STATE
//! value passed as `--state` resumes incremental streams.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use connector_api::registry::Registry;
use connector_api::{
    Catalog, ConfiguredCatalog, Error, ErrorKind, LogLevel, Message, Result, State, StreamDescriptor,
    StreamEvent, SyncMode,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use time::format_description::well_known::Rfc3339;

use super::source::{self, emit};
use crate::cli::SingerArgs;
use crate::exit::Exit;

/// Runs the tap: the catalog with `--discover`, else a sync.
pub async fn singer(registry: &Registry, args: SingerArgs, out: &mut (dyn Write + Send)) -> Result<Exit> {
    let config = source::load_config(registry.find(&args.connector)?, &args.config)?;
    let discovered = config.connector().discover(config.config()).await?;
    if args.discover {
        let streams: Vec<Value> = discovered.streams.iter().map(singer_stream).collect();
        return emit(out, &json!({"streams": streams})).map(|()| Exit::Ok);
    }
    let selection = match &args.catalog {
        Some(path) => select(&discovered, source::read_input(path, "catalog")?)?,
        None => Selection { catalog: discovered.configure(None, false)?, dropped: BTreeMap::new() },
    };
    let mut bookmarks = match &args.state {
        Some(path) => source::read_input::<SingerState>(path, "state")?.bookmarks,
        None => Map::new(),
    };
    let state = State { streams: bookmarks.iter().map(|(k, v)| (k.clone(), v.clone())).collect() };
    emit_schemas(out, &selection)?;
    let exit = source::read(&config, &selection.catalog, &state, |message| match message {
        Message::Record(mut record) => {
            if let (Some(dropped), Some(data)) = (selection.dropped.get(&record.stream), record.data.as_object_mut()) {
                data.retain(|name, _| !dropped.contains(name));
            }
            let extracted = time::OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default();
            emit(
                out,
                &json!({"type": "RECORD", "stream": record.stream, "record": record.data, "time_extracted": extracted}),
            )
        }
        Message::State(checkpoint) => {
            bookmarks.insert(checkpoint.stream, checkpoint.value);
            emit(out, &state_message(&bookmarks))
        }
        // Singer keeps stdout for messages; everything else is a log line on stderr.
        Message::Log(log) => {
            match log.level {
                LogLevel::Debug => tracing::debug!("{}", log.message),
                LogLevel::Info => tracing::info!("{}", log.message),
                LogLevel::Warn => tracing::warn!("{}", log.message),
                LogLevel::Error => tracing::error!("{}", log.message),
            }
            Ok(())
        }
        Message::Status(status) => {
            if let Some(error) = status.event.error() {
                tracing::error!(stream = %status.stream, "The stream failed: {error}");
            } else if let StreamEvent::Completed { records } = status.event {
                tracing::info!(stream = %status.stream, records, "Stream read.");
            }
            Ok(())
        }
    })
    .await?;
    // The sync's last word is its state: targets such as target-jsonl keep a STATE only
    // when no record follows it, and records of concurrent streams follow most.
    if !bookmarks.is_empty() {
        emit(out, &state_message(&bookmarks))?;
    }
    Ok(exit)
}

/// A SCHEMA message per selected stream, before any record: streams are read at once, so
/// their records interleave. The schema leaves out the fields the catalog deselected.
fn emit_schemas(out: &mut (dyn Write + Send), selection: &Selection) -> Result<()> {
    for chosen in &selection.catalog.streams {
        let stream = &chosen.stream;
        let mut schema = stream.json_schema.clone();
        if let (Some(properties), Some(dropped)) =
            (schema.get_mut("properties").and_then(Value::as_object_mut), selection.dropped.get(&stream.name))
        {
            properties.retain(|name, _| !dropped.contains(name));
        }
        let bookmark_properties: Vec<&String> =
            stream.cursor_field.iter().filter(|_| chosen.sync_mode == SyncMode::Incremental).collect();
        emit(
            out,
            &json!({
                "type": "SCHEMA",
                "stream": stream.name,
                "schema": schema,
                "key_properties": stream.primary_key,
                "bookmark_properties": bookmark_properties,
            }),
        )?;
    }
    Ok(())
}

/// A STATE message holding every stream's bookmark: Singer state is whole, not per stream.
fn state_message(bookmarks: &Map<String, Value>) -> Value {
    json!({"type": "STATE", "value": {"bookmarks": bookmarks}})
}

/// Singer's name of `mode`.
fn replication_method(mode: SyncMode) -> &'static str {
    match mode {
        SyncMode::FullRefresh => "FULL_TABLE",
        SyncMode::Incremental => "INCREMENTAL",
    }
}

/// A stream as a Singer catalog describes it, selected, in its default mode.
fn singer_stream(stream: &StreamDescriptor) -> Value {
    let mode = stream.default_sync_mode();
    let mut top = json!({
        "inclusion": "available",
        "selected": true,
        "selected-by-default": true,
        "table-key-properties": stream.primary_key,
        "valid-replication-keys": stream.cursor_field.iter().collect::<Vec<_>>(),
        "replication-method": replication_method(mode),
    });
    if let [only] = stream.supported_sync_modes.as_slice() {
        top["forced-replication-method"] = json!(replication_method(*only));
    }
    if let (SyncMode::Incremental, Some(cursor)) = (mode, &stream.cursor_field) {
        top["replication-key"] = json!(cursor);
    }
    let mut metadata = vec![json!({"breadcrumb": [], "metadata": top})];
    let properties = stream.json_schema.get("properties").and_then(Value::as_object);
    for name in properties.into_iter().flat_map(|p| p.keys()) {
        let automatic = stream.primary_key.contains(name) || stream.cursor_field.as_ref() == Some(name);
        let inclusion = if automatic { "automatic" } else { "available" };
        metadata.push(json!({
            "breadcrumb": ["properties", name],
            "metadata": {"inclusion": inclusion, "selected-by-default": true},
        }));
    }
    json!({
        "tap_stream_id": stream.name,
        "stream": stream.name,
        "schema": stream.json_schema,
        "key_properties": stream.primary_key,
        "metadata": metadata,
    })
}

/// A Singer catalog as a tap receives it back: only what selects.
#[derive(Deserialize)]
struct SingerCatalog {
    streams: Vec<SingerCatalogStream>,
}

#[derive(Deserialize)]
struct SingerCatalogStream {
    tap_stream_id: String,
    #[serde(default)]
    metadata: Vec<SingerMetadata>,
}

#[derive(Deserialize)]
struct SingerMetadata {
    breadcrumb: Vec<String>,
    metadata: Map<String, Value>,
}

/// Singer state: the bookmarks of the last STATE message.
#[derive(Deserialize)]
struct SingerState {
    #[serde(default)]
    bookmarks: Map<String, Value>,
}

/// What a catalog passed back selects: the streams in their modes, and per stream the
/// fields deselected.
struct Selection {
    catalog: ConfiguredCatalog,
    dropped: BTreeMap<String, BTreeSet<String>>,
}

/// Whether `metadata` selects its stream or field: `selected`, else `selected-by-default`.
fn is_selected(metadata: &Map<String, Value>) -> bool {
    let flag = |key: &str| metadata.get(key).and_then(Value::as_bool);
    flag("selected").or_else(|| flag("selected-by-default")).unwrap_or(false)
}

/// The streams `catalog` selects, described as the connector discovered them, each in
/// the replication method the catalog asks for (the stream's default without one), and
/// the fields it deselects (never a key or the cursor: their inclusion is automatic).
fn select(discovered: &Catalog, catalog: SingerCatalog) -> Result<Selection> {
    let mut names = Vec::new();
    let mut modes = Vec::new();
    let mut dropped = BTreeMap::new();
    for stream in catalog.streams {
        let top = stream.metadata.iter().find(|m| m.breadcrumb.is_empty()).map(|m| &m.metadata);
        if !top.is_some_and(is_selected) {
            continue;
        }
        let method = top.and_then(|m| m.get("replication-method")).and_then(Value::as_str);
        modes.push(match method {
            None => None,
            Some("FULL_TABLE") => Some(SyncMode::FullRefresh),
            Some("INCREMENTAL") => Some(SyncMode::Incremental),
            Some(other) => {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("stream `{}`: replication-method {other} is not supported", stream.tap_stream_id),
                )
                .with_hint("Use FULL_TABLE or INCREMENTAL"));
            }
        });
        let known = discovered.stream(&stream.tap_stream_id);
        let always = |field: &String| {
            known.is_some_and(|k| k.primary_key.contains(field) || k.cursor_field.as_ref() == Some(field))
        };
        let fields: BTreeSet<String> = stream
            .metadata
            .iter()
            .filter(|m| {
                m.breadcrumb.len() == 2 && m.breadcrumb[0] == "properties" && !is_selected(&m.metadata)
            })
            .map(|m| m.breadcrumb[1].clone())
            .filter(|field| !always(field))
            .collect();
        if !fields.is_empty() {
            dropped.insert(stream.tap_stream_id.clone(), fields);
        }
        names.push(stream.tap_stream_id);
    }
    let mut configured = discovered.configure(Some(&names), false)?;
    for (chosen, mode) in configured.streams.iter_mut().zip(modes) {
        if let Some(mode) = mode {
            source::set_mode(chosen, mode)?;
        }
    }
    Ok(Selection { catalog: configured, dropped })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn discovered() -> Catalog {
        Catalog {
            streams: vec![
                StreamDescriptor {
                    name: "items".into(),
                    description: String::new(),
                    json_schema: json!({"type": "object", "properties": {"id": {}, "name": {}, "price": {}}}),
                    primary_key: vec!["id".into()],
                    cursor_field: None,
                    supported_sync_modes: vec![SyncMode::FullRefresh],
                },
                StreamDescriptor {
                    name: "events".into(),
                    description: String::new(),
                    json_schema: json!({"type": "object", "properties": {"seq": {}, "kind": {}}}),
                    primary_key: vec!["seq".into()],
                    cursor_field: Some("seq".into()),
                    supported_sync_modes: vec![SyncMode::Incremental, SyncMode::FullRefresh],
                },
            ],
        }
    }

    /// The discovered catalog as Singer prints it, edited by `edit`, read back.
    fn round_trip(edit: impl FnOnce(&mut Value)) -> Result<Selection> {
        let mut catalog =
            json!({"streams": discovered().streams.iter().map(singer_stream).collect::<Vec<_>>()});
        edit(&mut catalog);
        select(&discovered(), serde_json::from_value(catalog).unwrap())
    }

    #[test]
    fn the_discovered_catalog_selects_every_stream_in_its_default_mode() {
        let selection = round_trip(|_| {}).unwrap();
        let modes: Vec<_> =
            selection.catalog.streams.iter().map(|s| (s.stream.name.as_str(), s.sync_mode)).collect();
        assert_eq!(modes, [("items", SyncMode::FullRefresh), ("events", SyncMode::Incremental)]);
        assert!(selection.dropped.is_empty());
    }

    #[test]
    fn metadata_deselects_streams_and_fields_and_sets_the_method() {
        let selection = round_trip(|c| {
            c["streams"][0]["metadata"][0]["metadata"]["selected"] = json!(false);
            let events = &mut c["streams"][1]["metadata"];
            events[0]["metadata"]["replication-method"] = json!("FULL_TABLE");
            for field in events.as_array_mut().unwrap().iter_mut().skip(1) {
                field["metadata"]["selected"] = json!(false);
            }
        })
        .unwrap();
        assert_eq!(selection.catalog.streams.len(), 1);
        assert_eq!(selection.catalog.streams[0].sync_mode, SyncMode::FullRefresh);
        // `seq` is the key and the cursor: always sent.
        assert_eq!(selection.dropped["events"], BTreeSet::from(["kind".to_string()]));
    }

    #[test]
    fn incremental_without_a_cursor_reads_in_full_and_log_based_is_refused() {
        let selection = round_trip(|c| {
            c["streams"][0]["metadata"][0]["metadata"]["replication-method"] = json!("INCREMENTAL")
        })
        .unwrap();
        assert_eq!(selection.catalog.streams[0].sync_mode, SyncMode::FullRefresh);
        let err = round_trip(|c| {
            c["streams"][1]["metadata"][0]["metadata"]["replication-method"] = json!("LOG_BASED")
        })
        .err()
        .unwrap();
        assert_eq!(err.kind(), ErrorKind::Config);
    }
}

//! Folder destinations for export: `jsonl:DIR` and `csv:DIR`, a folder per connector
//! instance (`DIR/qlik-sense_acme.eu.qlikcloud.com/`) and a file per stream in it.
//!
//! Files cannot roll back, so the same guarantees are kept by other means:
//! - a full-refresh stream is written to `.<stream>.<ext>.partial` and renamed over
//!   `<stream>.<ext>` when the stream completed (a rename replaces one file atomically;
//!   a run's streams are renamed one after another, so `--atomic` is all or nothing per
//!   file, not across files);
//! - an incremental stream appends to `<stream>.<ext>`; each checkpoint is saved in
//!   the folder's `_state.json` only after the records before it are flushed to disk,
//!   together with the file's length at that point. A failed stream or run, or the next
//!   run after a crash, truncates the file back to that length, so records are neither
//!   lost nor repeated; a key appended again (an update, a look-back window read twice)
//!   is compacted away at the end of the run ([`keys`]), so the file holds each key
//!   once, as a table would;
//! - one run per instance: a lock file in `DIR/.locks/`;
//! - a stream file that `_state.json` does not list is not ours, and the run stops.
//!
//! Runs of every instance are appended to `DIR/_runs.jsonl`.

pub mod csv;
pub mod format;
pub mod jsonl;
pub mod keys;

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use connector_api::{Error, ErrorKind, Result, State, SyncMode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use self::csv::CsvWriter;
pub use self::format::Format;
use self::jsonl::JsonlWriter;
use self::keys::FileKeys;
use super::checkpoints::Checkpoints;
use super::lock::{InstanceLock, held_by_another_run};
use super::{
    Destination, LoadStats, Registration, RunInfo, RunOutcome, RunRecord, RunStatus, Spec, StreamPlan,
    dest_error, foreign_table, must_exist, now_rfc3339, unselected_stream,
};

/// `jsonl:DIR`: a folder of JSON Lines files.
pub const JSONL: Registration = Registration {
    schemes: &["jsonl:"],
    form: "jsonl:DIR",
    description: "A folder of JSON Lines files, one per stream and tenant",
    example: "jsonl:./export",
    open: |spec| Box::pin(async move { open(spec, Format::Jsonl) }),
    open_existing: |spec| Box::pin(async move { open_existing(spec, Format::Jsonl) }),
};

/// `csv:DIR`: a folder of CSV files.
pub const CSV: Registration = Registration {
    schemes: &["csv:"],
    form: "csv:DIR",
    description: "A folder of CSV files with a header row, one per stream and tenant",
    example: "csv:./export",
    open: |spec| Box::pin(async move { open(spec, Format::Csv) }),
    open_existing: |spec| Box::pin(async move { open_existing(spec, Format::Csv) }),
};

fn open(spec: Spec<'_>, format: Format) -> Result<Box<dyn Destination>> {
    Ok(Box::new(FileDestination::open(spec.rest, format)?))
}

fn open_existing(spec: Spec<'_>, format: Format) -> Result<Box<dyn Destination>> {
    must_exist(spec.path())?;
    open(spec, format)
}

/// A stream's entry in `_state.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct StreamState {
    /// The connector's checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<Value>,
    /// Length of the stream's file when the checkpoint was saved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
}

/// `_state.json`: instance → stream → state.
type StateDoc = BTreeMap<String, BTreeMap<String, StreamState>>;

enum Writer {
    Jsonl(JsonlWriter),
    Csv(Box<CsvWriter>),
}

impl Writer {
    /// Hands buffered output to the OS and returns the file.
    fn flush_file(&mut self) -> std::io::Result<&File> {
        match self {
            Writer::Jsonl(w) => w.flush(),
            Writer::Csv(w) => w.flush(),
        }
    }

    /// Flushes; returns the file length, the offset a checkpoint records.
    fn flush(&mut self) -> std::io::Result<u64> {
        Ok(self.flush_file()?.metadata()?.len())
    }

    /// Flushes and forces the file to disk; returns its length.
    fn sync(&mut self) -> std::io::Result<u64> {
        let file = self.flush_file()?;
        file.sync_data()?;
        Ok(file.metadata()?.len())
    }
}

struct StreamFile {
    plan: StreamPlan,
    final_path: PathBuf,
    partial_path: Option<PathBuf>,
    writer: Writer,
    rows_before: u64,
    /// For incremental streams: the keys in the file, so a repeated one is compacted.
    keys: Option<FileKeys>,
}

struct FileRun {
    info: RunInfo,
    files: HashMap<String, StreamFile>,
    /// Checkpoints not saved yet; an incremental one with its file's length when it came.
    checkpoints: Checkpoints<u64>,
    doc: StateDoc,
}

/// A folder of JSON Lines or CSV files.
pub struct FileDestination {
    root: PathBuf,
    format: Format,
    run: Option<FileRun>,
    /// The run holding the lock, and the lock: `_runs.jsonl` gets its record at the end.
    lock: Option<(RunInfo, InstanceLock)>,
}

/// The folder of `instance` under `root`: its name, with anything but letters, digits,
/// `.`, `-` and `_` replaced by `_`.
fn instance_dir(root: &Path, instance: &str) -> PathBuf {
    let name: String = instance
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .collect();
    root.join(name)
}

fn io_err(what: impl std::fmt::Display) -> impl Fn(std::io::Error) -> Error {
    move |e| dest_error(&what, e)
}

impl FileDestination {
    /// Uses (creating if needed) the folder `dir`.
    pub fn open(dir: &str, format: Format) -> Result<Self> {
        if dir.is_empty() {
            return Err(Error::config(
                "dest",
                format!("{}: needs a folder, e.g. {}:./export", format.ext(), format.ext()),
            ));
        }
        let root = PathBuf::from(dir);
        std::fs::create_dir_all(&root).map_err(io_err(format!("cannot create folder {}", root.display())))?;
        Ok(FileDestination { root, format, run: None, lock: None })
    }

    fn state_path(&self, instance: &str) -> PathBuf {
        instance_dir(&self.root, instance).join("_state.json")
    }

    fn read_doc(&self, instance: &str) -> Result<StateDoc> {
        let path = self.state_path(instance);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                dest_error(format!("corrupt state file {}", path.display()), e).with_hint(
                    "`connector-host state reset` sets it aside and starts the instance's checkpoints over",
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StateDoc::new()),
            Err(e) => Err(dest_error(format!("cannot read {}", path.display()), e)),
        }
    }

    /// Replaces the instance's `_state.json` atomically: write a temporary file, sync,
    /// rename.
    fn write_doc(&self, instance: &str, doc: &StateDoc) -> Result<()> {
        let path = self.state_path(instance);
        let tmp = path.with_extension("json.tmp");
        let what = format!("cannot write {}", tmp.display());
        let mut file = File::create(&tmp).map_err(io_err(&what))?;
        file.write_all(&serde_json::to_vec_pretty(doc).unwrap_or_default()).map_err(io_err(&what))?;
        file.sync_all().map_err(io_err(&what))?;
        std::fs::rename(&tmp, &path).map_err(io_err(format!("cannot replace {}", path.display())))
    }

    fn append_run(&self, record: &RunRecord) -> Result<()> {
        let path = self.root.join("_runs.jsonl");
        let what = format!("cannot append to {}", path.display());
        let mut file = OpenOptions::new().create(true).append(true).open(&path).map_err(io_err(&what))?;
        let mut line = serde_json::to_vec(record).unwrap_or_default();
        line.push(b'\n');
        file.write_all(&line).map_err(io_err(&what))
    }

    fn run_record(info: &RunInfo, outcome: &RunOutcome) -> RunRecord {
        RunRecord {
            run_id: info.run_id.clone(),
            connector: info.connector.clone(),
            instance: info.instance.clone(),
            config_fingerprint: info.config_fingerprint.clone(),
            started_at: info.started_at.clone(),
            finished_at: Some(outcome.finished_at.clone()),
            status: outcome.status.as_str().to_string(),
            records: outcome.records.clone(),
            error: outcome.error.clone(),
            failed: outcome.failed.clone(),
            warnings: outcome.warnings.clone(),
        }
    }

    fn open_stream(&self, plan: &StreamPlan, doc: &mut StateDoc, instance: &str) -> Result<StreamFile> {
        let name = format!("{}.{}", plan.stream, self.format.ext());
        let dir = instance_dir(&self.root, instance);
        let final_path = dir.join(&name);
        let listed = doc.get(instance).is_some_and(|streams| streams.contains_key(&plan.stream));
        if final_path.exists() && !listed {
            return Err(foreign_table(&final_path.display().to_string(), &self.describe()));
        }
        if final_path.is_dir() {
            return Err(dest_error(
                format!("cannot write {}", final_path.display()),
                "it is a folder, not a file",
            ));
        }
        let rows_before = count_lines(&final_path).saturating_sub(u64::from(self.format == Format::Csv));
        let (file, partial_path, fresh) = match plan.sync_mode {
            SyncMode::FullRefresh => {
                doc.entry(instance.to_string()).or_default().entry(plan.stream.clone()).or_default();
                let partial = dir.join(format!(".{name}.partial"));
                let file =
                    File::create(&partial).map_err(io_err(format!("cannot create {}", partial.display())))?;
                (file, Some(partial), true)
            }
            _ => {
                let what = format!("cannot open {}", final_path.display());
                let mut file = OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .read(true)
                    .write(true)
                    .open(&final_path)
                    .map_err(io_err(&what))?;
                let len = file.metadata().map_err(io_err(&what))?.len();
                let entry =
                    doc.entry(instance.to_string()).or_default().entry(plan.stream.clone()).or_default();
                let committed = entry.offset.unwrap_or(len).min(len);
                if committed < len {
                    tracing::warn!(file = %final_path.display(), bytes = len - committed, "Dropping records written after the last checkpoint");
                }
                file.set_len(committed).map_err(io_err(&what))?;
                file.seek(SeekFrom::End(0)).map_err(io_err(&what))?;
                entry.offset = Some(committed);
                if self.format == Format::Csv && committed > 0 {
                    let header = CsvWriter::existing_header(&final_path).map_err(io_err(&what))?;
                    let want: Vec<String> = plan.columns.iter().map(|c| c.name.clone()).collect();
                    if header.as_ref() != Some(&want) {
                        return Err(Error::new(
                            ErrorKind::Config,
                            format!(
                                "{}: the columns changed since it was written; CSV files cannot gain columns",
                                final_path.display()
                            ),
                        )
                        .with_hint("Run once with --full-refresh to rewrite the file with the new columns"));
                    }
                }
                (file, None, committed == 0)
            }
        };
        let keys = match plan.sync_mode {
            SyncMode::Incremental => Some(
                FileKeys::read(&final_path, self.format, plan)
                    .map_err(io_err(format!("cannot read the keys of {}", final_path.display())))?,
            ),
            SyncMode::FullRefresh => None,
        };
        let writer = match self.format {
            Format::Jsonl => Writer::Jsonl(JsonlWriter::new(file)),
            Format::Csv => Writer::Csv(Box::new(
                CsvWriter::new(file, plan.columns.clone(), fresh)
                    .map_err(|e| dest_error(format!("cannot write {}", final_path.display()), e))?,
            )),
        };
        Ok(StreamFile { plan: plan.clone(), final_path, partial_path, writer, rows_before, keys })
    }
}

/// Lines in the file at `path` (0 when it does not exist); a read error ends the count
/// rather than looping on it.
fn count_lines(path: &Path) -> u64 {
    let Ok(file) = File::open(path) else { return 0 };
    BufReader::new(file).split(b'\n').map_while(std::result::Result::ok).count() as u64
}

#[async_trait]
impl Destination for FileDestination {
    fn describe(&self) -> String {
        let kind = match self.format {
            Format::Jsonl => "JSON Lines",
            Format::Csv => "CSV",
        };
        format!("{kind} files in {}", self.root.display())
    }

    fn sample_query(&self, plan: &StreamPlan) -> String {
        let instance = self.run.as_ref().map(|r| r.info.instance.as_str()).unwrap_or_default();
        let file = instance_dir(&self.root, instance).join(format!("{}.{}", plan.stream, self.format.ext()));
        format!("head {}", file.display())
    }

    async fn load_state(&mut self, instance: &str) -> Result<State> {
        let doc = self.read_doc(instance)?;
        let mut state = State::default();
        for (stream, entry) in doc.get(instance).into_iter().flatten() {
            if let Some(value) = &entry.value {
                state.set(stream.clone(), value.clone());
            }
        }
        Ok(state)
    }

    async fn reset_state(&mut self, instance: &str, streams: Option<&[String]>) -> Result<u64> {
        let doc = match self.read_doc(instance) {
            Ok(doc) => doc,
            // A corrupt state file is set aside, not an obstacle to starting over.
            Err(e) if streams.is_none() && self.state_path(instance).is_file() => {
                let aside =
                    self.state_path(instance).with_extension(format!("json.corrupt-{}", now_rfc3339()));
                std::fs::rename(self.state_path(instance), &aside)
                    .map_err(io_err(format!("cannot set aside {}", self.state_path(instance).display())))?;
                tracing::warn!(file = %aside.display(), error = %e.message(), "Set a corrupt state file aside");
                // The stream files in the instance's folder are still ours: list them,
                // whole and without a checkpoint, so the next run reads them again.
                let dir = instance_dir(&self.root, instance);
                let mut doc = StateDoc::new();
                let entries = doc.entry(instance.to_string()).or_default();
                for entry in std::fs::read_dir(&dir)
                    .map_err(io_err(format!("cannot list {}", dir.display())))?
                    .flatten()
                {
                    let path = entry.path();
                    if path.is_file()
                        && path.extension().is_some_and(|x| x == self.format.ext())
                        && let Some(stream) = path.file_stem().map(|s| s.to_string_lossy().into_owned())
                    {
                        let offset = std::fs::metadata(&path).map(|m| m.len()).ok();
                        entries.insert(stream, StreamState { value: None, offset });
                    }
                }
                self.write_doc(instance, &doc)?;
                return Ok(1);
            }
            Err(e) => return Err(e),
        };
        let mut doc = doc;
        let mut n = 0;
        if let Some(entries) = doc.get_mut(instance) {
            for (stream, entry) in entries.iter_mut() {
                if streams.is_none_or(|s| s.contains(stream)) && entry.value.take().is_some() {
                    n += 1;
                }
            }
        }
        if instance_dir(&self.root, instance).is_dir() {
            self.write_doc(instance, &doc)?;
        }
        Ok(n)
    }

    async fn recent_runs(&mut self, limit: usize) -> Result<Vec<RunRecord>> {
        let path = self.root.join("_runs.jsonl");
        let Ok(file) = File::open(&path) else { return Ok(Vec::new()) };
        let mut runs: Vec<RunRecord> = BufReader::new(file)
            .lines()
            .map_while(std::result::Result::ok)
            .filter_map(|l| serde_json::from_str(&l).ok())
            .collect();
        runs.reverse();
        runs.truncate(limit);
        Ok(runs)
    }

    async fn lock(&mut self, run: &RunInfo) -> Result<()> {
        let Some(lock) = InstanceLock::try_acquire(&self.root.join(".locks"), &run.instance)? else {
            let err = held_by_another_run(&run.instance, &self.describe(), None);
            let refused = RunOutcome {
                run_id: run.run_id.clone(),
                finished_at: now_rfc3339(),
                status: RunStatus::Refused,
                records: BTreeMap::new(),
                error: Some(err.to_string()),
                failed: BTreeMap::new(),
                warnings: Vec::new(),
            };
            self.append_run(&Self::run_record(run, &refused))?;
            return Err(err);
        };
        self.lock = Some((run.clone(), lock));
        let dir = instance_dir(&self.root, &run.instance);
        std::fs::create_dir_all(&dir).map_err(io_err(format!("cannot create folder {}", dir.display())))?;
        // Holding the lock, any `.partial` file here is a killed run's.
        for entry in
            std::fs::read_dir(&dir).map_err(io_err(format!("cannot list {}", dir.display())))?.flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(".partial") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    async fn begin(&mut self, run: &RunInfo, plans: &[StreamPlan]) -> Result<()> {
        let mut doc = self.read_doc(&run.instance)?;
        if let Some(other) = doc.keys().find(|k| **k != run.instance) {
            return Err(foreign_table(
                &format!("{} (it holds the state of {other})", self.state_path(&run.instance).display()),
                &self.describe(),
            ));
        }
        let mut files = HashMap::new();
        for plan in plans {
            files.insert(plan.stream.clone(), self.open_stream(plan, &mut doc, &run.instance)?);
        }
        self.write_doc(&run.instance, &doc)?;
        self.run = Some(FileRun { info: run.clone(), files, checkpoints: Checkpoints::default(), doc });
        Ok(())
    }

    async fn write(&mut self, stream: &str, records: Vec<Value>) -> Result<()> {
        let run = self.run.as_mut().ok_or_else(|| Error::internal("write outside a run"))?;
        let Some(file) = run.files.get_mut(stream) else {
            return Err(unselected_stream("record", stream));
        };
        run.checkpoints.wrote(file.partial_path.is_some(), records.len());
        if let Some(keys) = &mut file.keys {
            for record in &records {
                keys.add(&file.plan, record);
            }
        }
        for record in &records {
            match &mut file.writer {
                Writer::Jsonl(w) => {
                    w.write(record).map_err(io_err(format!("cannot write {}", file.final_path.display())))?
                }
                Writer::Csv(w) => w.write(record).map_err(|reason| {
                    Error::new(ErrorKind::Source, format!("stream {stream}, {reason}"))
                        .with_context("stream", stream.to_string())
                })?,
            }
        }
        Ok(())
    }

    async fn checkpoint(&mut self, stream: &str, value: Value) -> Result<()> {
        let run = self.run.as_mut().ok_or_else(|| Error::internal("checkpoint outside a run"))?;
        let Some(file) = run.files.get_mut(stream) else {
            return Err(unselected_stream("checkpoint", stream));
        };
        let staged = file.partial_path.is_some();
        let flushed =
            || file.writer.flush().map_err(io_err(format!("cannot flush {}", file.final_path.display())));
        if !run.checkpoints.keep(stream, value, staged, flushed)? {
            return Ok(());
        }
        // The records a checkpoint covers reach the disk before the checkpoint does.
        for (stream, (value, offset)) in run.checkpoints.take_pending() {
            if let Some(file) = run.files.get_mut(&stream) {
                file.writer.sync().map_err(io_err(format!("cannot sync {}", file.final_path.display())))?;
            }
            let entry = run.doc.entry(run.info.instance.clone()).or_default().entry(stream).or_default();
            entry.value = Some(value);
            entry.offset = Some(offset);
        }
        let (instance, doc) = (run.info.instance.clone(), run.doc.clone());
        self.write_doc(&instance, &doc)
    }

    async fn commit(&mut self, outcome: &RunOutcome) -> Result<BTreeMap<String, LoadStats>> {
        let mut run = self.run.take().ok_or_else(|| Error::internal("commit outside a run"))?;
        let mut stats = BTreeMap::new();
        let instance = run.info.instance.clone();
        for (stream, file) in run.files.iter_mut() {
            let failed = outcome.failed.contains_key(stream);
            let len =
                file.writer.sync().map_err(io_err(format!("cannot flush {}", file.final_path.display())))?;
            let entry = run.doc.entry(instance.clone()).or_default().entry(stream.clone()).or_default();
            let received = outcome.records.get(stream).copied().unwrap_or(0);
            match (&file.partial_path, failed) {
                (Some(partial), true) => {
                    let _ = std::fs::remove_file(partial);
                }
                (Some(partial), false) => {
                    std::fs::rename(partial, &file.final_path)
                        .map_err(io_err(format!("cannot replace {}", file.final_path.display())))?;
                    entry.value = run.checkpoints.take_final(stream, &outcome.failed);
                    entry.offset = Some(len);
                    stats.insert(
                        stream.clone(),
                        LoadStats { rows: received, rows_before: file.rows_before, ..LoadStats::default() },
                    );
                }
                (None, _) => {
                    // A failed stream keeps what its last checkpoint covers, no more.
                    let committed = match run.checkpoints.take_pending_of(stream) {
                        Some((value, offset)) => {
                            entry.value = Some(value);
                            offset
                        }
                        None if failed => entry.offset.unwrap_or(0),
                        None => len,
                    };
                    truncate(&file.final_path, committed, len)?;
                    let seen = file.keys.take().unwrap_or_default();
                    // A key the file already held was appended again: keep its last record.
                    let committed = if seen.repeated > 0 {
                        keys::compact(&file.final_path, self.format, &file.plan)
                            .map_err(io_err(format!("cannot compact {}", file.final_path.display())))?
                    } else {
                        committed
                    };
                    entry.offset = Some(committed);
                    if !failed {
                        stats.insert(
                            stream.clone(),
                            LoadStats {
                                rows: file.rows_before + seen.new,
                                rows_before: file.rows_before,
                                inserted: Some(seen.new),
                                updated: Some(seen.repeated),
                            },
                        );
                    }
                }
            }
        }
        self.write_doc(&instance, &run.doc)?;
        self.append_run(&Self::run_record(&run.info, outcome))?;
        self.lock = None;
        Ok(stats)
    }

    async fn abort(&mut self, outcome: &RunOutcome) -> Result<()> {
        if let Some(run) = self.run.take() {
            for (stream, file) in run.files {
                match &file.partial_path {
                    Some(partial) => {
                        let _ = std::fs::remove_file(partial);
                    }
                    None => {
                        let committed = run
                            .doc
                            .get(&run.info.instance)
                            .and_then(|s| s.get(&stream))
                            .and_then(|e| e.offset);
                        drop(file.writer);
                        if let Some(offset) = committed {
                            truncate(&file.final_path, offset, u64::MAX)?;
                        }
                    }
                }
            }
        }
        match self.lock.take() {
            Some((info, _lock)) => self.append_run(&Self::run_record(&info, outcome)),
            None => Ok(()),
        }
    }
}

/// Cuts the file at `path` back to `offset` bytes when it is longer (`len` is its
/// length if known, `u64::MAX` to look it up).
fn truncate(path: &Path, offset: u64, len: u64) -> Result<()> {
    if offset >= len {
        return Ok(());
    }
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err(format!("cannot open {}", path.display())))?;
    let len = file.metadata().map_err(io_err(format!("cannot open {}", path.display())))?.len();
    if offset < len {
        file.set_len(offset).map_err(io_err(format!("cannot truncate {}", path.display())))?;
    }
    Ok(())
}

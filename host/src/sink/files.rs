//! Folder destinations for export: `jsonl:DIR` and `csv:DIR`, one file per stream.
//!
//! Files cannot roll back, so the same guarantees are kept by other means:
//! - a full-refresh stream is written to `.<stream>.<ext>.partial` and renamed over
//!   `<stream>.<ext>` only when the run succeeds;
//! - an incremental stream appends to `<stream>.<ext>`; each checkpoint is saved in
//!   `_state.json` only after the records before it are flushed to disk, together with
//!   the file's length at that point. A failed run, or the next run after a crash,
//!   truncates the file back to that length, so records are neither lost nor repeated.
//!
//! Runs are appended to `_runs.jsonl`.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use connector_api::{Error, ErrorKind, Result, State, SyncMode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::csv::CsvWriter;
use super::jsonl::JsonlWriter;
use super::{
    CommitPolicy, Destination, LoadStats, RunInfo, RunOutcome, RunRecord, StreamPlan, dest_error,
    unselected_stream,
};

/// The file format of a folder destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON Lines.
    Jsonl,
    /// CSV with a header row.
    Csv,
}

impl Format {
    fn ext(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
        }
    }
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
    final_path: PathBuf,
    partial_path: Option<PathBuf>,
    writer: Writer,
    rows_before: u64,
}

struct FileRun {
    info: RunInfo,
    files: HashMap<String, StreamFile>,
    final_states: BTreeMap<String, Value>,
    /// Incremental checkpoints not saved yet, with their file's length when they came.
    pending: BTreeMap<String, (Value, u64)>,
    policy: CommitPolicy,
    doc: StateDoc,
}

/// A folder of JSON Lines or CSV files.
pub struct FileDestination {
    dir: PathBuf,
    format: Format,
    run: Option<FileRun>,
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
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).map_err(io_err(format!("cannot create folder {}", dir.display())))?;
        Ok(FileDestination { dir, format, run: None })
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join("_state.json")
    }

    fn read_doc(&self) -> Result<StateDoc> {
        match std::fs::read(self.state_path()) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| dest_error(format!("corrupt state file {}", self.state_path().display()), e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StateDoc::new()),
            Err(e) => Err(dest_error(format!("cannot read {}", self.state_path().display()), e)),
        }
    }

    /// Replaces `_state.json` atomically: write a temporary file, sync, rename.
    fn write_doc(&self, doc: &StateDoc) -> Result<()> {
        let tmp = self.dir.join("_state.json.tmp");
        let what = format!("cannot write {}", tmp.display());
        let mut file = File::create(&tmp).map_err(io_err(&what))?;
        file.write_all(&serde_json::to_vec_pretty(doc).unwrap_or_default()).map_err(io_err(&what))?;
        file.sync_all().map_err(io_err(&what))?;
        std::fs::rename(&tmp, self.state_path())
            .map_err(io_err(format!("cannot replace {}", self.state_path().display())))
    }

    fn append_run(&self, record: &RunRecord) -> Result<()> {
        let path = self.dir.join("_runs.jsonl");
        let what = format!("cannot append to {}", path.display());
        let mut file = OpenOptions::new().create(true).append(true).open(&path).map_err(io_err(&what))?;
        let mut line = serde_json::to_vec(record).unwrap_or_default();
        line.push(b'\n');
        file.write_all(&line).map_err(io_err(&what))
    }

    fn run_record(info: &RunInfo, outcome: &RunOutcome, status: &str) -> RunRecord {
        RunRecord {
            run_id: info.run_id.clone(),
            connector: info.connector.clone(),
            instance: info.instance.clone(),
            config_fingerprint: info.config_fingerprint.clone(),
            started_at: info.started_at.clone(),
            finished_at: Some(outcome.finished_at.clone()),
            status: status.to_string(),
            records: outcome.records.clone(),
            error: outcome.error.clone(),
        }
    }

    fn open_stream(&self, plan: &StreamPlan, doc: &mut StateDoc, instance: &str) -> Result<StreamFile> {
        let name = format!("{}.{}", plan.stream, self.format.ext());
        let final_path = self.dir.join(&name);
        let rows_before = count_lines(&final_path).saturating_sub(u64::from(self.format == Format::Csv));
        let (file, partial_path, fresh) = match plan.sync_mode {
            SyncMode::FullRefresh => {
                let partial = self.dir.join(format!(".{name}.partial"));
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
        let writer = match self.format {
            Format::Jsonl => Writer::Jsonl(JsonlWriter::new(file)),
            Format::Csv => Writer::Csv(Box::new(
                CsvWriter::new(file, plan.columns.clone(), fresh)
                    .map_err(|e| dest_error(format!("cannot write {}", final_path.display()), e))?,
            )),
        };
        Ok(StreamFile { final_path, partial_path, writer, rows_before })
    }
}

fn count_lines(path: &Path) -> u64 {
    File::open(path).map(|f| BufReader::new(f).split(b'\n').count() as u64).unwrap_or(0)
}

#[async_trait]
impl Destination for FileDestination {
    fn describe(&self) -> String {
        let kind = match self.format {
            Format::Jsonl => "JSON Lines",
            Format::Csv => "CSV",
        };
        format!("{kind} files in {}", self.dir.display())
    }

    fn sample_query(&self, plan: &StreamPlan) -> String {
        format!("head {}", self.dir.join(format!("{}.{}", plan.stream, self.format.ext())).display())
    }

    async fn load_state(&mut self, instance: &str) -> Result<State> {
        let doc = self.read_doc()?;
        let mut state = State::default();
        for (stream, entry) in doc.get(instance).into_iter().flatten() {
            if let Some(value) = &entry.value {
                state.set(stream.clone(), value.clone());
            }
        }
        Ok(state)
    }

    async fn reset_state(&mut self, instance: &str, streams: Option<&[String]>) -> Result<u64> {
        let mut doc = self.read_doc()?;
        let mut n = 0;
        if let Some(entries) = doc.get_mut(instance) {
            for (stream, entry) in entries.iter_mut() {
                if streams.is_none_or(|s| s.contains(stream)) && entry.value.take().is_some() {
                    n += 1;
                }
            }
        }
        self.write_doc(&doc)?;
        Ok(n)
    }

    async fn recent_runs(&mut self, limit: usize) -> Result<Vec<RunRecord>> {
        let path = self.dir.join("_runs.jsonl");
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

    async fn begin(&mut self, run: &RunInfo, plans: &[StreamPlan]) -> Result<()> {
        let mut doc = self.read_doc()?;
        let mut files = HashMap::new();
        for plan in plans {
            files.insert(plan.stream.clone(), self.open_stream(plan, &mut doc, &run.instance)?);
        }
        self.write_doc(&doc)?;
        self.run = Some(FileRun {
            info: run.clone(),
            files,
            final_states: BTreeMap::new(),
            pending: BTreeMap::new(),
            policy: CommitPolicy::default(),
            doc,
        });
        Ok(())
    }

    async fn write(&mut self, stream: &str, records: Vec<Value>) -> Result<()> {
        let run = self.run.as_mut().ok_or_else(|| Error::internal("write outside a run"))?;
        let Some(file) = run.files.get_mut(stream) else {
            return Err(unselected_stream("record", stream));
        };
        if file.partial_path.is_none() {
            run.policy.rows(records.len());
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
        if file.partial_path.is_some() {
            run.final_states.insert(stream.to_string(), value);
            return Ok(());
        }
        let offset =
            file.writer.flush().map_err(io_err(format!("cannot flush {}", file.final_path.display())))?;
        run.pending.insert(stream.to_string(), (value, offset));
        if !run.policy.due() {
            return Ok(());
        }
        // The records a checkpoint covers reach the disk before the checkpoint does.
        for (stream, (value, offset)) in std::mem::take(&mut run.pending) {
            if let Some(file) = run.files.get_mut(&stream) {
                file.writer.sync().map_err(io_err(format!("cannot sync {}", file.final_path.display())))?;
            }
            let entry = run.doc.entry(run.info.instance.clone()).or_default().entry(stream).or_default();
            entry.value = Some(value);
            entry.offset = Some(offset);
        }
        run.policy.committed();
        let doc = run.doc.clone();
        self.write_doc(&doc)
    }

    async fn commit(&mut self, outcome: &RunOutcome) -> Result<BTreeMap<String, LoadStats>> {
        let mut run = self.run.take().ok_or_else(|| Error::internal("commit outside a run"))?;
        let mut stats = BTreeMap::new();
        for (stream, file) in run.files.iter_mut() {
            let len =
                file.writer.sync().map_err(io_err(format!("cannot flush {}", file.final_path.display())))?;
            let entry =
                run.doc.entry(run.info.instance.clone()).or_default().entry(stream.clone()).or_default();
            if let Some(partial) = &file.partial_path {
                std::fs::rename(partial, &file.final_path)
                    .map_err(io_err(format!("cannot replace {}", file.final_path.display())))?;
                entry.value = run.final_states.remove(stream);
            } else if let Some((value, _)) = run.pending.remove(stream) {
                entry.value = Some(value);
            }
            entry.offset = Some(len);
            let received = outcome.records.get(stream).copied().unwrap_or(0);
            let rows = if file.partial_path.is_some() { received } else { file.rows_before + received };
            stats.insert(
                stream.clone(),
                LoadStats {
                    rows,
                    rows_before: file.rows_before,
                    inserted: file.partial_path.is_none().then_some(received),
                    updated: file.partial_path.is_none().then_some(0),
                },
            );
        }
        self.write_doc(&run.doc)?;
        self.append_run(&Self::run_record(&run.info, outcome, "succeeded"))?;
        Ok(stats)
    }

    async fn abort(&mut self, outcome: &RunOutcome) -> Result<()> {
        let Some(run) = self.run.take() else { return Ok(()) };
        for (stream, file) in run.files {
            match &file.partial_path {
                Some(partial) => {
                    let _ = std::fs::remove_file(partial);
                }
                None => {
                    let committed =
                        run.doc.get(&run.info.instance).and_then(|s| s.get(&stream)).and_then(|e| e.offset);
                    drop(file.writer);
                    if let Some(offset) = committed {
                        let f = OpenOptions::new()
                            .write(true)
                            .open(&file.final_path)
                            .map_err(io_err(format!("cannot open {}", file.final_path.display())))?;
                        f.set_len(offset)
                            .map_err(io_err(format!("cannot truncate {}", file.final_path.display())))?;
                    }
                }
            }
        }
        self.append_run(&Self::run_record(&run.info, outcome, "failed"))
    }
}

//! The conformance suite every connector's tests run (feature `testkit`).
//!
//! [`run_conformance`] drives a connector through `spec`, `check`, `discover` and `read`
//! the way a host would, with a configuration that works and one that does not, and
//! reports every contract the connector breaks rather than stopping at the first:
//!
//! - metadata: the id is kebab-case and registered exactly once, the version is semver;
//! - spec: the config schema is a valid draft 2020-12 JSON Schema, every expected secret
//!   field is marked `writeOnly` and `x-secret`, and the working config validates;
//! - check: the working config passes; the bad one yields a failed step or a
//!   Config/Auth error with a message, and nothing panics; a read with the bad config
//!   ends with a Config/Auth/Permission error before any record;
//! - discover: stream schemas compile, primary keys and cursor fields are properties,
//!   cursor fields only on streams that support incremental reads;
//! - read: records only for selected streams, each valid against its stream's schema
//!   with a non-null primary key, checkpoints after the records they cover, and a
//!   second read from the final state re-emits nothing for incremental streams;
//! - secrets: no secret value from either config in any message, error, check report
//!   or log line captured at trace level.
//!
//! ```ignore
//! let report = connector_api::testkit::run_conformance(
//!     Arc::new(MyConnector::default()),
//!     json!({"base_url": server.base_url(), "token": server.token()}),
//!     json!({"base_url": server.base_url(), "token": "wrong"}),
//!     &["token"],
//! )
//! .await;
//! report.assert_passed();
//! ```

mod logs;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use serde_json::Value;
use tracing::instrument::WithSubscriber;

use crate::{
    CheckStatus, ConfiguredCatalog, ConfiguredStream, Connector, ErrorKind, Message, State, StreamEvent,
    StreamStatus, SyncMode,
};

/// How long one connector call (a whole read included) may take before the suite calls
/// it hung.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// At most this many examples are quoted per failed check, so a broken stream of a
/// million records gives a readable report.
const MAX_EXAMPLES: usize = 5;

/// Whether one conformance check held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The connector meets this part of the contract.
    Passed,
    /// It does not; the outcome's detail says how.
    Failed,
    /// The check does not apply (e.g. no incremental stream to re-read).
    Skipped,
}

/// The result of one named check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Stable name of the check (`spec.secrets`, `read.records` …).
    pub check: &'static str,
    /// Whether it held.
    pub verdict: Verdict,
    /// What was found: figures when it passed, the offending items when it failed.
    pub detail: String,
}

/// Everything [`run_conformance`] found about one connector.
#[derive(Debug, Clone, Default)]
pub struct ConformanceReport {
    /// The connector's id.
    pub connector: String,
    /// Every check, in the order it ran.
    pub outcomes: Vec<Outcome>,
    /// Records per stream emitted by the full read of every stream.
    pub records: BTreeMap<String, u64>,
    /// Log lines captured at trace level while the connector ran.
    pub log_lines: usize,
    /// Wall time of the whole suite.
    pub elapsed: Duration,
}

impl ConformanceReport {
    /// The checks that failed.
    pub fn failures(&self) -> Vec<&Outcome> {
        self.outcomes.iter().filter(|o| o.verdict == Verdict::Failed).collect()
    }

    /// True when no check failed.
    pub fn passed(&self) -> bool {
        self.failures().is_empty()
    }

    /// The outcome of the check called `name`, if it ran.
    pub fn outcome(&self, name: &str) -> Option<&Outcome> {
        self.outcomes.iter().find(|o| o.check == name)
    }

    /// Panics with the list of failed checks unless every check passed or was skipped.
    #[track_caller]
    pub fn assert_passed(&self) {
        if !self.passed() {
            panic!("{self}");
        }
    }

    fn push(&mut self, check: &'static str, verdict: Verdict, detail: impl Into<String>) {
        // One line per check: hints and multi-line errors are folded.
        let detail = detail.into().replace('\n', " ");
        self.outcomes.push(Outcome { check, verdict, detail });
    }

    /// `result`'s value; when the step could not run at all, records `check` as failed
    /// with the error and returns `None`, so the caller stops that check.
    fn ran<T>(&mut self, check: &'static str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(e) => {
                self.push(check, Verdict::Failed, e);
                None
            }
        }
    }

    /// Records a check that passes when `problems` is empty.
    fn verdict(&mut self, check: &'static str, problems: Vec<String>, ok_detail: impl Into<String>) {
        if problems.is_empty() {
            self.push(check, Verdict::Passed, ok_detail);
        } else {
            let more = problems.len().saturating_sub(MAX_EXAMPLES);
            let mut detail = problems.into_iter().take(MAX_EXAMPLES).collect::<Vec<_>>().join("; ");
            if more > 0 {
                detail.push_str(&format!("; and {more} more"));
            }
            self.push(check, Verdict::Failed, detail);
        }
    }
}

impl fmt::Display for ConformanceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failures = self.failures();
        writeln!(
            f,
            "conformance of `{}`: {} checks, {} failed, {:.1}s",
            self.connector,
            self.outcomes.len(),
            failures.len(),
            self.elapsed.as_secs_f64()
        )?;
        for o in &self.outcomes {
            let mark = match o.verdict {
                Verdict::Passed => "ok  ",
                Verdict::Failed => "FAIL",
                Verdict::Skipped => "skip",
            };
            writeln!(f, "  {mark} {:<26} {}", o.check, o.detail)?;
        }
        Ok(())
    }
}

/// Runs the whole suite against `connector`.
///
/// `good_config` must reach a source with at least one record in some stream;
/// `bad_config` must be rejected by that source (a wrong or revoked key: an unreachable
/// host would be retried for minutes before failing, and is not a Config/Auth error).
/// `secret_fields` names the config fields that hold secrets: the spec must mark each
/// one, and their values (from both configs) must never appear in anything the
/// connector emits or logs.
pub async fn run_conformance(
    connector: Arc<dyn Connector>,
    good_config: Value,
    bad_config: Value,
    secret_fields: &[&str],
) -> ConformanceReport {
    let started = Instant::now();
    let capture = logs::Capture::start();
    let suite = Suite { connector, good: good_config, bad: bad_config, capture };
    let mut report =
        ConformanceReport { connector: suite.connector.metadata().id.to_string(), ..Default::default() };

    suite.metadata(&mut report);
    let secrets = suite.spec(&mut report, secret_fields);
    let mut leaks = Leaks::new(secrets);
    suite.check(&mut report, &mut leaks).await;
    if let Some(catalog) = suite.discover(&mut report, &mut leaks).await {
        suite.read(&mut report, &mut leaks, &catalog).await;
    }

    let log = suite.capture.text();
    report.log_lines = log.lines().count();
    leaks.scan("log output", &log);
    report.verdict(
        "secrets.messages",
        leaks.messages,
        "no secret value in any message, error or check report",
    );
    report.verdict(
        "secrets.logs",
        leaks.logs,
        format!("no secret value in {} captured log lines", report.log_lines),
    );
    report.elapsed = started.elapsed();
    report
}

struct Suite {
    connector: Arc<dyn Connector>,
    good: Value,
    bad: Value,
    capture: logs::Capture,
}

/// The outcome of one read: what arrived before the stream ended, and the error that
/// ended it, if one did.
struct ReadRun {
    messages: Vec<Message>,
    error: Option<String>,
    /// The kind of that error, and its `Debug` text (scanned for secrets).
    error_detail: Option<(ErrorKind, String)>,
}

impl ReadRun {
    fn records(&self) -> impl Iterator<Item = (usize, &crate::Record)> {
        self.messages.iter().enumerate().filter_map(|(i, m)| match m {
            Message::Record(r) => Some((i, r)),
            _ => None,
        })
    }
}

impl Suite {
    /// Runs a connector call under the capturing subscriber, turning a panic or a hang
    /// into a description instead of taking the test down.
    async fn guarded<T>(&self, what: &str, fut: impl Future<Output = T>) -> Result<T, String> {
        let fut = AssertUnwindSafe(fut).catch_unwind().with_subscriber(self.capture.dispatch().clone());
        match tokio::time::timeout(CALL_TIMEOUT, fut).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(panic)) => {
                let text = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Err(format!("{what} panicked: {text}"))
            }
            Err(_) => Err(format!("{what} did not finish within {}s", CALL_TIMEOUT.as_secs())),
        }
    }

    fn metadata(&self, report: &mut ConformanceReport) {
        let meta = self.connector.metadata();
        let mut problems = Vec::new();
        if !is_kebab_case(meta.id) {
            problems.push(format!("id `{}` is not kebab-case (lowercase words joined by `-`)", meta.id));
        }
        if let Err(e) = semver::Version::parse(meta.version) {
            problems.push(format!("version `{}` is not semver: {e}", meta.version));
        }
        for (field, value) in
            [("name", meta.name), ("description", meta.description), ("documentation", meta.documentation)]
        {
            if value.trim().is_empty() {
                problems.push(format!("{field} is empty"));
            }
        }
        report.verdict("metadata", problems, format!("{} {} ({})", meta.id, meta.version, meta.name));

        let problems = match crate::registry::registry() {
            Err(e) => vec![e.to_string()],
            Ok(registry) => match registry.find(meta.id) {
                Ok(found) if found.metadata() == meta => vec![],
                Ok(found) => vec![format!(
                    "the registry's `{}` is a different connector ({} {})",
                    meta.id,
                    found.metadata().name,
                    found.metadata().version
                )],
                Err(_) => vec![format!(
                    "`{}` is not in the registry: call connector_api::register_connector! in the crate",
                    meta.id
                )],
            },
        };
        report.verdict("metadata.registry", problems, "registered once under its id");
    }

    /// Checks the spec and returns every secret value of both configs.
    fn spec(&self, report: &mut ConformanceReport, expected_secrets: &[&str]) -> Vec<String> {
        let schema = self.connector.spec().config_schema;
        let compiled = compile_schema(&schema);
        report.verdict(
            "spec.schema",
            compiled.as_ref().err().cloned().into_iter().collect(),
            "config schema is valid JSON Schema (draft 2020-12)",
        );

        let properties = schema.get("properties").and_then(Value::as_object);
        let mut problems = Vec::new();
        for field in expected_secrets {
            match properties.and_then(|p| p.get(*field)) {
                None => problems.push(format!("secret field `{field}` is not a property of the spec")),
                Some(prop) => {
                    for marker in ["writeOnly", "x-secret"] {
                        if prop.get(marker) != Some(&Value::Bool(true)) {
                            problems.push(format!("secret field `{field}` lacks `\"{marker}\": true`"));
                        }
                    }
                }
            }
        }
        report.verdict(
            "spec.secrets",
            problems,
            format!("secret fields marked: {}", expected_secrets.join(", ")),
        );

        match &compiled {
            Ok(validator) => {
                let problems: Vec<String> = validator
                    .iter_errors(&self.good)
                    .map(|e| format!("good config at `{}`: {}", e.instance_path, e.masked()))
                    .collect();
                report.verdict("spec.good_config", problems, "the working config validates against the spec");
            }
            Err(_) => report.push("spec.good_config", Verdict::Skipped, "the spec does not compile"),
        }

        let mut fields: BTreeSet<String> = expected_secrets.iter().map(|s| s.to_string()).collect();
        fields.extend(crate::secret::secret_fields(&schema));
        let mut values = Vec::new();
        for config in [&self.good, &self.bad] {
            for field in &fields {
                if let Some(Value::String(s)) = config.get(field)
                    && !s.is_empty()
                {
                    values.push(s.clone());
                }
            }
        }
        values.sort();
        values.dedup();
        values
    }

    async fn check(&self, report: &mut ConformanceReport, leaks: &mut Leaks) {
        match self.guarded("check(good config)", self.connector.check(&self.good)).await {
            Err(e) => report.push("check.good_config", Verdict::Failed, e),
            Ok(Err(e)) => {
                leaks.scan("check(good config) error", &format!("{e} {e:?}"));
                report.push("check.good_config", Verdict::Failed, format!("returned an error: {e}"));
            }
            Ok(Ok(r)) => {
                leaks.scan("check(good config) report", &format!("{r:?}"));
                let failed: Vec<String> = r
                    .steps
                    .iter()
                    .filter(|s| s.status == CheckStatus::Failed)
                    .map(|s| format!("step `{}` failed: {}", s.name, s.message))
                    .collect();
                let problems =
                    if r.steps.is_empty() { vec!["the report has no steps".to_string()] } else { failed };
                report.verdict("check.good_config", problems, format!("{} steps passed", r.steps.len()));
            }
        }

        match self.guarded("check(bad config)", self.connector.check(&self.bad)).await {
            Err(e) => report.push("check.bad_config", Verdict::Failed, e),
            Ok(Err(e)) => {
                leaks.scan("check(bad config) error", &format!("{e} {e:?}"));
                let mut problems = Vec::new();
                if !matches!(e.kind(), ErrorKind::Config | ErrorKind::Auth) {
                    problems.push(format!("error kind is `{}`, expected `config` or `auth`: {e}", e.kind()));
                }
                if e.message().trim().is_empty() {
                    problems.push("the error has no message".to_string());
                }
                report.verdict("check.bad_config", problems, format!("{} error: {}", e.kind(), e.message()));
            }
            Ok(Ok(r)) => {
                leaks.scan("check(bad config) report", &format!("{r:?}"));
                let failed = r.steps.iter().find(|s| s.status == CheckStatus::Failed);
                let problems = match failed {
                    None => vec!["the bad config passed every step".to_string()],
                    Some(s) if s.message.trim().is_empty() => {
                        vec![format!("failed step `{}` has no message", s.name)]
                    }
                    Some(_) => vec![],
                };
                let detail =
                    failed.map(|s| format!("step `{}` failed: {}", s.name, s.message)).unwrap_or_default();
                report.verdict("check.bad_config", problems, detail);
            }
        }
    }

    async fn discover(&self, report: &mut ConformanceReport, leaks: &mut Leaks) -> Option<crate::Catalog> {
        let catalog = match self.guarded("discover", self.connector.discover(&self.good)).await {
            Err(e) => {
                report.push("discover", Verdict::Failed, e);
                return None;
            }
            Ok(Err(e)) => {
                leaks.scan("discover error", &format!("{e} {e:?}"));
                report.push("discover", Verdict::Failed, format!("returned an error: {e}"));
                return None;
            }
            Ok(Ok(c)) => c,
        };
        leaks.scan("catalog", &serde_json::to_string(&catalog).unwrap_or_default());

        let mut problems = Vec::new();
        if catalog.streams.is_empty() {
            problems.push("the catalog has no streams".to_string());
        }
        let mut seen = BTreeSet::new();
        for s in &catalog.streams {
            if !seen.insert(s.name.as_str()) {
                problems.push(format!("stream `{}` appears twice", s.name));
            }
            if !is_snake_case(&s.name) {
                problems.push(format!("stream name `{}` is not snake_case", s.name));
            }
            if s.supported_sync_modes.is_empty() {
                problems.push(format!("stream `{}` supports no sync mode", s.name));
            }
        }
        if let Some(fixed) = self.connector.static_catalog()
            && fixed != catalog
        {
            problems.push("discover differs from static_catalog()".to_string());
        }
        report.verdict("discover", problems, format!("{} streams", catalog.streams.len()));

        let problems: Vec<String> = catalog
            .streams
            .iter()
            .filter_map(|s| compile_schema(&s.json_schema).err().map(|e| format!("stream `{}`: {e}", s.name)))
            .collect();
        report.verdict(
            "discover.schemas",
            problems,
            "every stream schema is valid JSON Schema (draft 2020-12)",
        );

        let mut problems = Vec::new();
        for s in &catalog.streams {
            if s.primary_key.is_empty() {
                problems.push(format!("stream `{}` has no primary key", s.name));
            }
            for key in &s.primary_key {
                if !has_property(&s.json_schema, key) {
                    problems
                        .push(format!("stream `{}`: primary key `{key}` is not a schema property", s.name));
                }
            }
        }
        report.verdict("discover.primary_keys", problems, "every primary key is a schema property");

        let mut problems = Vec::new();
        for s in &catalog.streams {
            let incremental = s.supported_sync_modes.contains(&SyncMode::Incremental);
            match (&s.cursor_field, incremental) {
                (Some(c), false) => problems
                    .push(format!("stream `{}` has cursor `{c}` but does not support incremental", s.name)),
                (Some(c), true) if !has_property(&s.json_schema, c) => {
                    problems.push(format!("stream `{}`: cursor `{c}` is not a schema property", s.name))
                }
                (None, true) => {
                    problems.push(format!("stream `{}` is incremental without a cursor field", s.name))
                }
                _ => {}
            }
        }
        report.verdict("discover.cursor_fields", problems, "cursor fields exactly on incremental streams");
        Some(catalog)
    }

    async fn read_once(
        &self,
        config: &Value,
        catalog: &ConfiguredCatalog,
        state: &State,
        leaks: &mut Leaks,
    ) -> Result<ReadRun, String> {
        let run = async {
            let failed = |messages, e: crate::Error| ReadRun {
                messages,
                error: Some(e.to_string()),
                error_detail: Some((e.kind(), format!("{e:?}"))),
            };
            let mut stream = match self.connector.read(config, catalog, state).await {
                Ok(s) => s,
                Err(e) => return failed(vec![], e),
            };
            let mut messages = Vec::new();
            while let Some(item) = stream.next().await {
                match item {
                    Ok(m) => messages.push(m),
                    Err(e) => return failed(messages, e),
                }
            }
            // A stream that failed does not end the read; the first one is the read's error.
            let first_failure = messages.iter().find_map(|m| match m {
                Message::Status(StreamStatus {
                    event: StreamEvent::Failed { message, kind, .. }, ..
                }) => Some(crate::Error::new(*kind, message.clone())),
                _ => None,
            });
            match first_failure {
                Some(e) => failed(messages, e),
                None => ReadRun { messages, error: None, error_detail: None },
            }
        };
        let run = self.guarded("read", run).await?;
        for m in &run.messages {
            leaks.scan("a read message", &serde_json::to_string(m).unwrap_or_default());
        }
        if let (Some(e), Some((_, debug))) = (&run.error, &run.error_detail) {
            leaks.scan("a read error", &format!("{e} {debug}"));
        }
        Ok(run)
    }

    async fn read(&self, report: &mut ConformanceReport, leaks: &mut Leaks, catalog: &crate::Catalog) {
        // A subset first: the last stream alone, so a connector that reads a stream from
        // another (members from groups) must still emit only what was asked for.
        if catalog.streams.len() < 2 {
            report.push("read.selection", Verdict::Skipped, "only one stream");
        } else {
            let chosen = catalog.streams[catalog.streams.len() - 1].name.clone();
            let selected = catalog.configure(Some(std::slice::from_ref(&chosen)), false).ok();
            match selected {
                None => report.push("read.selection", Verdict::Failed, "could not select one stream"),
                Some(configured) => {
                    match self.read_once(&self.good, &configured, &State::default(), leaks).await {
                        Err(e) => report.push("read.selection", Verdict::Failed, e),
                        Ok(run) => {
                            let mut problems: Vec<String> =
                                run.error.iter().map(|e| format!("read failed: {e}")).collect();
                            problems.extend(run.messages.iter().filter_map(|m| match m {
                                Message::Record(r) if r.stream != chosen => {
                                    Some(format!("record of unselected `{}`", r.stream))
                                }
                                Message::State(c) if c.stream != chosen => {
                                    Some(format!("checkpoint of unselected `{}`", c.stream))
                                }
                                _ => None,
                            }));
                            let n = run.records().count();
                            report.verdict(
                                "read.selection",
                                problems,
                                format!("only `{chosen}` read ({n} records)"),
                            );
                        }
                    }
                }
            }
        }

        self.read_bad_config(report, leaks, catalog).await;

        let Ok(configured) = catalog.configure(None, false) else {
            report.push("read", Verdict::Failed, "could not configure the catalog");
            return;
        };
        let result = self.read_once(&self.good, &configured, &State::default(), leaks).await;
        let Some(run) = report.ran("read", result) else { return };
        if let Some(e) = &run.error {
            report.push("read", Verdict::Failed, format!("the read of every stream failed: {e}"));
            return;
        }
        for s in &configured.streams {
            report.records.insert(s.stream.name.clone(), 0);
        }
        for (_, r) in run.records() {
            *report.records.entry(r.stream.clone()).or_default() += 1;
        }
        let total: u64 = report.records.values().sum();
        let problems = if total == 0 { vec!["no stream emitted a record".to_string()] } else { vec![] };
        report.verdict("read", problems, format!("{total} records in {} streams", configured.streams.len()));

        check_records(report, &configured, &run);
        check_status(report, &configured, &run);
        check_checkpoints(report, &configured, &run);
        self.check_resume(report, leaks, &configured, &run).await;
        self.check_rerun(report, leaks, &configured, &run).await;
    }

    /// Reads the first stream with the bad config: the read must end with a
    /// Config/Auth/Permission error, before emitting any record.
    async fn read_bad_config(
        &self,
        report: &mut ConformanceReport,
        leaks: &mut Leaks,
        catalog: &crate::Catalog,
    ) {
        let Some(first) = catalog.streams.first() else { return };
        let Ok(configured) = catalog.configure(Some(std::slice::from_ref(&first.name)), false) else {
            return;
        };
        let result = self.read_once(&self.bad, &configured, &State::default(), leaks).await;
        let Some(run) = report.ran("read.bad_config", result) else { return };
        let records = run.records().count();
        let problems = match (&run.error, run.error_detail.as_ref().map(|(k, _)| *k)) {
            (None, _) => vec![format!("the read with the bad config succeeded ({records} records)")],
            (Some(_), Some(ErrorKind::Config | ErrorKind::Auth | ErrorKind::Permission)) if records == 0 => {
                vec![]
            }
            (Some(_), Some(ErrorKind::Config | ErrorKind::Auth | ErrorKind::Permission)) => {
                vec![format!("{records} records emitted before the bad config was rejected")]
            }
            (Some(e), kind) => vec![format!(
                "error kind is `{}`, expected `config`, `auth` or `permission`: {e}",
                kind.map(ErrorKind::as_str).unwrap_or("unknown")
            )],
        };
        let detail = run.error.unwrap_or_default();
        report.verdict("read.bad_config", problems, format!("`{}` rejected: {detail}", first.name));
    }

    /// Resumes each incremental stream from its first checkpoint that has records on
    /// both sides: what came after it must come again, and the read must not start over.
    /// Records shortly before the checkpoint may come again: a connector may re-read an
    /// overlap (late or tied events) that the destination upserts by primary key; the
    /// stream's earliest record coming again means the checkpoint was ignored.
    async fn check_resume(
        &self,
        report: &mut ConformanceReport,
        leaks: &mut Leaks,
        configured: &ConfiguredCatalog,
        run: &ReadRun,
    ) {
        let mut problems = Vec::new();
        let mut resumed = 0;
        for cs in configured.streams.iter().filter(|s| s.sync_mode == SyncMode::Incremental) {
            let name = &cs.stream.name;
            let positions: Vec<usize> =
                run.records().filter(|(_, r)| &r.stream == name).map(|(i, _)| i).collect();
            let (Some(&first), Some(&last)) = (positions.first(), positions.last()) else { continue };
            let mid = run.messages.iter().enumerate().find_map(|(i, m)| match m {
                Message::State(c) if &c.stream == name && i > first && i < last => Some((i, c.value.clone())),
                _ => None,
            });
            let Some((at, value)) = mid else { continue };
            resumed += 1;
            let key_of = |i: usize| match &run.messages[i] {
                Message::Record(r) => primary_key(&r.data, &cs.stream.primary_key),
                _ => None,
            };
            // The stream's earliest record: by its cursor where it has one (a connector may
            // read time slices at once, so the first record emitted need not be the
            // earliest), else the first emitted.
            let earliest = cs.stream.cursor_field.as_deref().and_then(|cursor| {
                positions
                    .iter()
                    .filter_map(|&i| match &run.messages[i] {
                        Message::Record(r) => r.data.get(cursor).and_then(Value::as_str).map(|at| (at, i)),
                        _ => None,
                    })
                    .min()
                    .map(|(_, i)| i)
            });
            let first_key = key_of(earliest.unwrap_or(first));
            let after: BTreeSet<String> =
                positions.iter().filter(|&&i| i > at).filter_map(|&i| key_of(i)).collect();
            let mut state = State::default();
            state.set(name.clone(), value);
            let one = ConfiguredCatalog { streams: vec![cs.clone()] };
            match self.read_once(&self.good, &one, &state, leaks).await {
                Err(e) => problems.push(format!("stream `{name}`: {e}")),
                Ok(again) if again.error.is_some() => problems.push(format!(
                    "stream `{name}`: resumed read failed: {}",
                    again.error.unwrap_or_default()
                )),
                Ok(again) => {
                    let got: BTreeSet<String> = again
                        .records()
                        .filter_map(|(_, r)| primary_key(&r.data, &cs.stream.primary_key))
                        .collect();
                    let missing = after.difference(&got).count();
                    if missing > 0 {
                        problems.push(format!(
                            "stream `{name}`: resuming from a mid-stream checkpoint lost {missing} records emitted after it"
                        ));
                    }
                    if first_key.is_some_and(|k| got.contains(&k)) {
                        problems.push(format!(
                            "stream `{name}`: resuming from a mid-stream checkpoint started over (its first record came again)"
                        ));
                    }
                }
            }
        }
        if resumed == 0 && problems.is_empty() {
            report.push("read.resume", Verdict::Skipped, "no mid-stream checkpoint to resume from");
        } else {
            report.verdict(
                "read.resume",
                problems,
                format!("{resumed} streams resumed from a mid-stream checkpoint"),
            );
        }
    }

    /// Reads every incremental stream again from the final state: it must not start
    /// over (its first record must not come back). An overlap before the checkpoint may
    /// come again, as in [`Suite::check_resume`].
    async fn check_rerun(
        &self,
        report: &mut ConformanceReport,
        leaks: &mut Leaks,
        configured: &ConfiguredCatalog,
        run: &ReadRun,
    ) {
        let incremental: Vec<ConfiguredStream> =
            configured.streams.iter().filter(|s| s.sync_mode == SyncMode::Incremental).cloned().collect();
        if incremental.is_empty() {
            report.push("read.incremental_rerun", Verdict::Skipped, "no incremental stream");
            return;
        }
        let mut state = State::default();
        for m in &run.messages {
            if let Message::State(c) = m {
                state.set(c.stream.clone(), c.value.clone());
            }
        }
        let catalog = ConfiguredCatalog { streams: incremental };
        let result = self.read_once(&self.good, &catalog, &state, leaks).await;
        let Some(again) = report.ran("read.incremental_rerun", result) else { return };
        let mut problems: Vec<String> =
            again.error.iter().map(|e| format!("second read failed: {e}")).collect();
        for cs in &catalog.streams {
            let pk = &cs.stream.primary_key;
            let keys = |run: &ReadRun| -> Vec<String> {
                run.records()
                    .filter(|(_, r)| r.stream == cs.stream.name)
                    .filter_map(|(_, r)| primary_key(&r.data, pk))
                    .collect()
            };
            let first = keys(run);
            let repeated: BTreeSet<String> = keys(&again).into_iter().collect();
            if first.first().is_some_and(|k| repeated.contains(k)) {
                problems.push(format!(
                    "stream `{}` started over from the final state: {} of {} records came again",
                    cs.stream.name,
                    first.iter().filter(|k| repeated.contains(*k)).count(),
                    first.len()
                ));
            }
        }
        let names: Vec<&str> = catalog.streams.iter().map(|s| s.stream.name.as_str()).collect();
        report.verdict("read.incremental_rerun", problems, format!("no start over for {}", names.join(", ")));
    }
}

/// Every record belongs to a selected stream, validates against its schema and has a
/// non-null primary key.
fn check_records(report: &mut ConformanceReport, configured: &ConfiguredCatalog, run: &ReadRun) {
    let validators: BTreeMap<&str, Result<jsonschema::Validator, String>> = configured
        .streams
        .iter()
        .map(|s| (s.stream.name.as_str(), compile_schema(&s.stream.json_schema)))
        .collect();
    let mut invalid = Vec::new();
    let mut keyless = Vec::new();
    for (n, (_, r)) in run.records().enumerate() {
        let Some(cs) = configured.stream(&r.stream) else {
            invalid.push(format!("record {n} of unselected stream `{}`", r.stream));
            continue;
        };
        if let Some(Ok(v)) = validators.get(r.stream.as_str()) {
            // Masked: the error names the path and the rule, never the value, which may
            // be personal data.
            if let Some(e) = v.iter_errors(&r.data).next() {
                let path = e.instance_path.to_string();
                let path = if path.is_empty() { "/" } else { path.as_str() };
                invalid.push(format!("stream `{}` record {n} at `{path}`: {}", r.stream, e.masked()));
            }
        }
        for key in &cs.stream.primary_key {
            if r.data.get(key).is_none_or(Value::is_null) {
                keyless.push(format!(
                    "stream `{}` record {n}: primary key `{key}` is missing or null",
                    r.stream
                ));
            }
        }
    }
    let count = run.records().count();
    report.verdict("read.records", invalid, format!("{count} records valid against their stream schema"));
    report.verdict("read.primary_keys", keyless, format!("{count} records carry their primary key"));
}

/// A successful read reports no failed stream, and a stream's `Completed` count equals
/// the records it emitted.
fn check_status(report: &mut ConformanceReport, configured: &ConfiguredCatalog, run: &ReadRun) {
    let mut emitted: BTreeMap<&str, u64> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut completed = 0;
    for m in &run.messages {
        match m {
            Message::Record(r) => *emitted.entry(r.stream.as_str()).or_default() += 1,
            Message::Status(s) => match &s.event {
                StreamEvent::Failed { message, .. } => problems
                    .push(format!("stream `{}` reported failure in a successful read: {message}", s.stream)),
                StreamEvent::Completed { records } => {
                    completed += 1;
                    let got = emitted.get(s.stream.as_str()).copied().unwrap_or(0);
                    if *records != got {
                        problems.push(format!(
                            "stream `{}` completed with {records} records but emitted {got}",
                            s.stream
                        ));
                    }
                    if !configured.is_selected(&s.stream) {
                        problems.push(format!("status of unselected stream `{}`", s.stream));
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }
    report.verdict("read.status", problems, format!("{completed} streams completed with matching counts"));
}

/// Checkpoints name selected streams, and each incremental stream's last record is
/// followed by a checkpoint, so the final state covers everything read.
fn check_checkpoints(report: &mut ConformanceReport, configured: &ConfiguredCatalog, run: &ReadRun) {
    let mut problems = Vec::new();
    let mut last_record: BTreeMap<&str, usize> = BTreeMap::new();
    let mut last_state: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, m) in run.messages.iter().enumerate() {
        match m {
            Message::Record(r) => {
                last_record.insert(r.stream.as_str(), i);
            }
            Message::State(c) => {
                if !configured.is_selected(&c.stream) {
                    problems.push(format!("checkpoint for unselected stream `{}`", c.stream));
                }
                last_state.insert(c.stream.as_str(), i);
            }
            _ => {}
        }
    }
    let mut covered = 0;
    for cs in configured.streams.iter().filter(|s| s.sync_mode == SyncMode::Incremental) {
        let name = cs.stream.name.as_str();
        match (last_record.get(name), last_state.get(name)) {
            (Some(r), Some(s)) if s > r => covered += 1,
            (Some(_), _) => problems.push(format!("stream `{name}`: records after its last checkpoint")),
            (None, _) => {}
        }
    }
    report.verdict(
        "read.checkpoints",
        problems,
        format!("{covered} incremental streams end with a checkpoint"),
    );
}

/// Secret values and where they were found.
struct Leaks {
    secrets: Vec<String>,
    messages: Vec<String>,
    logs: Vec<String>,
}

impl Leaks {
    fn new(secrets: Vec<String>) -> Self {
        Leaks { secrets, messages: vec![], logs: vec![] }
    }

    fn scan(&mut self, place: &str, text: &str) {
        for (n, secret) in self.secrets.iter().enumerate() {
            if text.contains(secret.as_str()) {
                // Name the secret by position: quoting it would leak it into test output.
                let found = format!("secret #{} appears in {place}", n + 1);
                let list = if place == "log output" { &mut self.logs } else { &mut self.messages };
                if !list.contains(&found) {
                    list.push(found);
                }
            }
        }
    }
}

/// Compiles `schema` as draft 2020-12 after validating it against the meta-schema.
fn compile_schema(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::draft202012::meta::validate(schema).map_err(|e| format!("not a valid JSON Schema: {e}"))?;
    jsonschema::draft202012::new(schema).map_err(|e| format!("does not compile: {e}"))
}

fn has_property(schema: &Value, name: &str) -> bool {
    schema.get("properties").and_then(|p| p.get(name)).is_some()
}

/// A record's primary key as one comparable string; `None` when a part is missing.
fn primary_key(data: &Value, keys: &[String]) -> Option<String> {
    keys.iter()
        .map(|k| data.get(k).filter(|v| !v.is_null()).map(Value::to_string))
        .collect::<Option<Vec<_>>>()
        .map(|parts| parts.join("\u{1f}"))
}

fn is_kebab_case(s: &str) -> bool {
    !s.is_empty()
        && s.split('-')
            .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
        && s.starts_with(|c: char| c.is_ascii_lowercase())
}

fn is_snake_case(s: &str) -> bool {
    !s.is_empty()
        && s.split('_')
            .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
        && s.starts_with(|c: char| c.is_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_rules() {
        assert!(is_kebab_case("qlik-sense"));
        assert!(is_kebab_case("scim"));
        assert!(!is_kebab_case("Qlik-Sense"));
        assert!(!is_kebab_case("qlik_sense"));
        assert!(!is_kebab_case("-qlik"));
        assert!(!is_kebab_case("qlik--sense"));
        assert!(is_snake_case("group_members"));
        assert!(!is_snake_case("groupMembers"));
    }

    #[test]
    fn primary_key_needs_every_part() {
        let data = serde_json::json!({"a": "x", "b": 2, "c": null});
        assert_eq!(primary_key(&data, &["a".into(), "b".into()]), Some("\"x\"\u{1f}2".into()));
        assert_eq!(primary_key(&data, &["a".into(), "c".into()]), None);
    }

    #[test]
    fn leaks_are_named_by_position_not_value() {
        let mut leaks = Leaks::new(vec!["tok-123".into()]);
        leaks.scan("a read message", "{\"x\":\"tok-123\"}");
        leaks.scan("log output", "clean");
        assert_eq!(leaks.messages, vec!["secret #1 appears in a read message".to_string()]);
        assert!(leaks.logs.is_empty());
    }

    #[test]
    fn invalid_schema_is_reported() {
        assert!(compile_schema(&serde_json::json!({"type": "object"})).is_ok());
        let err = compile_schema(&serde_json::json!({"type": "no-such-type"})).unwrap_err();
        assert!(err.contains("not a valid JSON Schema"), "{err}");
    }
}

//! What a run did, per stream: printed as a table for people, as JSON for scripts.

use std::io::Write;

use serde::Serialize;

use crate::sink::{LoadStats, RunStatus};
use crate::text_table;

/// How one stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamResult {
    /// Read to the end and committed.
    Committed,
    /// Failed; its previous rows (and checkpointed progress) are kept.
    Failed,
    /// Read to the end, but not committed because the run failed as a whole.
    NotCommitted,
}

/// The outcome of one stream.
#[derive(Debug, Clone, Serialize)]
pub struct StreamSummary {
    /// Stream name.
    pub stream: String,
    /// `full_refresh` or `incremental`.
    pub sync_mode: &'static str,
    /// How it ended.
    pub result: StreamResult,
    /// Records received.
    pub records: u64,
    /// Pages fetched.
    pub pages: u64,
    /// Retried requests.
    pub retries: u64,
    /// Time the rate limiter held requests back, in milliseconds.
    pub throttled_ms: u64,
    /// Seconds from the stream's start to its end.
    pub seconds: f64,
    /// What the load changed (absent when nothing was committed).
    pub load: Option<LoadStats>,
    /// Why the stream failed.
    pub error: Option<String>,
    /// What to do about it.
    pub hint: Option<String>,
}

/// The outcome of a run, printed as a table or (`--json`) as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// Run id.
    pub run_id: String,
    /// Connector id.
    pub connector: String,
    /// Connector instance: whose rows the run replaced.
    pub instance: String,
    /// Where the data went.
    pub destination: String,
    /// How the run ended.
    pub status: RunStatus,
    /// Total records received.
    pub records: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Per stream.
    pub streams: Vec<StreamSummary>,
    /// Why the run (or its first failed stream) failed.
    pub error: Option<String>,
    /// What the connector warned of during the run (a deprecation its source announced),
    /// each distinct warning once.
    pub warnings: Vec<String>,
    /// How to look at the data.
    pub sample_query: Option<String>,
}

impl RunSummary {
    /// Writes the human-readable summary.
    pub fn print(&self, out: &mut (dyn Write + Send)) -> std::io::Result<()> {
        let rows: Vec<Vec<String>> = self
            .streams
            .iter()
            .map(|s| {
                let change = match (&s.result, &s.load) {
                    (StreamResult::Failed, _) => "FAILED, previous rows kept".to_string(),
                    (_, Some(LoadStats { inserted: Some(i), updated: Some(u), .. })) => {
                        format!("{i} new, {u} updated")
                    }
                    (_, Some(LoadStats { rows_before: 0, .. })) => "new rows".to_string(),
                    (_, Some(l)) => format!("replaced {} rows", l.rows_before),
                    (_, None) => "not committed".to_string(),
                };
                vec![
                    s.stream.clone(),
                    s.sync_mode.to_string(),
                    s.records.to_string(),
                    change,
                    format!("{:.1}s", s.seconds),
                ]
            })
            .collect();
        writeln!(out)?;
        out.write_all(
            text_table::render(&["STREAM", "MODE", "RECORDS", "NEW/UPDATED", "DURATION"], &rows).as_bytes(),
        )?;
        writeln!(out)?;
        let failures: Vec<&StreamSummary> =
            self.streams.iter().filter(|s| s.result == StreamResult::Failed).collect();
        // Streams that failed alike (a 403 on every licence endpoint) share one hint,
        // printed once after them.
        let mut hints: Vec<&str> = Vec::new();
        for s in &failures {
            writeln!(out, "Stream {} failed: {}", s.stream, s.error.as_deref().unwrap_or("unknown error"))?;
            if let Some(hint) = s.hint.as_deref().filter(|h| !hints.contains(h)) {
                hints.push(hint);
            }
        }
        for hint in hints {
            writeln!(out, "Hint: {hint}")?;
        }
        if !self.warnings.is_empty() {
            writeln!(out, "Warnings:")?;
            for warning in &self.warnings {
                writeln!(out, "  - {warning}")?;
            }
        }
        match self.status {
            RunStatus::Succeeded | RunStatus::Partial => {
                let committed = self.streams.len() - failures.len();
                let what = if self.status == RunStatus::Succeeded {
                    "succeeded".to_string()
                } else {
                    format!(
                        "partly succeeded: {committed} of {} streams committed; the {} failed kept their previous rows and checkpoints",
                        self.streams.len(),
                        failures.len()
                    )
                };
                writeln!(
                    out,
                    "Run {} {what}: {} records of {} in {:.1}s ({:.0} records/s) into {}.",
                    self.run_id,
                    self.records,
                    self.instance,
                    self.seconds,
                    self.records as f64 / self.seconds.max(0.001),
                    self.destination
                )?;
                if let Some(q) = &self.sample_query {
                    writeln!(out, "Look at the data:  {q}")?;
                }
            }
            _ => writeln!(
                out,
                "Run {} {}: no table of {} was replaced in {}; incremental streams keep what they committed up to their last checkpoint and resume from there.",
                self.run_id,
                self.status.as_str(),
                self.instance,
                self.destination
            )?,
        }
        Ok(())
    }
}

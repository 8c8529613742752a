//! What a person watching a run sees: a progress bar per stream on a terminal, a plain
//! log line per stream every few seconds otherwise, nothing with `--quiet`.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use connector_api::StreamEvent;
use indicatif::{HumanCount, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// Bars on stderr (a terminal).
    Bars,
    /// A log line per active stream every `LOG_EVERY` (CI, cron).
    Log,
    /// Nothing.
    Quiet,
}

impl ProgressMode {
    /// Bars when stderr is a terminal, log lines otherwise, nothing when `quiet`.
    pub fn detect(quiet: bool) -> Self {
        if quiet {
            ProgressMode::Quiet
        } else if std::io::stderr().is_terminal() {
            ProgressMode::Bars
        } else {
            ProgressMode::Log
        }
    }
}

const LOG_EVERY: Duration = Duration::from_secs(10);

/// Counters of one stream during a run.
#[derive(Debug, Clone, Default)]
pub struct StreamProgress {
    /// Records received.
    pub records: u64,
    /// Pages fetched.
    pub pages: u64,
    /// Requests retried.
    pub retries: u64,
    /// Total time the client-side rate limiter held requests back.
    pub throttled: Duration,
    /// When the stream started.
    pub started: Option<Instant>,
    /// When it completed or failed.
    pub finished: Option<Instant>,
    bar: Option<ProgressBar>,
}

impl StreamProgress {
    /// Time from start to finish (or to now while running).
    pub fn duration(&self) -> Duration {
        match (self.started, self.finished) {
            (Some(s), Some(f)) => f - s,
            (Some(s), None) => s.elapsed(),
            _ => Duration::ZERO,
        }
    }

    /// Records per second since the stream started.
    pub fn rate(&self) -> f64 {
        self.records as f64 / self.duration().as_secs_f64().max(0.001)
    }

    fn detail(&self) -> String {
        let rate = format!("{}/s", HumanCount(self.rate() as u64));
        let mut s = format!("{rate:>9}  {} pages", self.pages);
        if self.retries > 0 {
            s.push_str(&format!(", {} retries", self.retries));
        }
        if !self.throttled.is_zero() {
            s.push_str(&format!(", throttled {:.1}s", self.throttled.as_secs_f64()));
        }
        s
    }
}

/// Tracks every stream of a run and renders progress.
pub struct Progress {
    mode: ProgressMode,
    multi: Option<MultiProgress>,
    streams: BTreeMap<String, StreamProgress>,
    last_log: Instant,
    /// Records since the last time-check, so the hot path stays cheap.
    tick: u64,
}

impl Progress {
    /// Progress shown in `mode`.
    pub fn new(mode: ProgressMode) -> Self {
        let multi = (mode == ProgressMode::Bars)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Progress { mode, multi, streams: BTreeMap::new(), last_log: Instant::now(), tick: 0 }
    }

    fn stream(&mut self, name: &str) -> &mut StreamProgress {
        if !self.streams.contains_key(name) {
            let bar = self.multi.as_ref().map(|m| {
                let bar = m.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {prefix:<24} {human_pos:>10} records  {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_prefix(name.to_string());
                bar.enable_steady_tick(Duration::from_millis(200));
                bar
            });
            self.streams.insert(name.to_string(), StreamProgress { bar, ..Default::default() });
        }
        self.streams.get_mut(name).expect("inserted above")
    }

    /// Counts `n` records of `stream`.
    pub fn records(&mut self, stream: &str, n: u64) {
        let s = self.stream(stream);
        s.records += n;
        s.started.get_or_insert_with(Instant::now);
        if let Some(bar) = &s.bar {
            bar.inc(n);
        }
        self.tick += n;
        if self.tick >= 4096 {
            self.tick = 0;
            self.maybe_log();
        }
    }

    /// Applies a status event of `stream`.
    pub fn event(&mut self, stream: &str, event: &StreamEvent) {
        let s = self.stream(stream);
        match event {
            StreamEvent::Started => {
                s.started = Some(Instant::now());
            }
            StreamEvent::PageFetched { .. } => s.pages += 1,
            StreamEvent::Retrying { reason, wait } => {
                s.retries += 1;
                tracing::info!(stream, reason = %reason, wait_ms = wait.as_millis() as u64, "Retrying a request");
            }
            StreamEvent::Throttled { wait } => s.throttled += *wait,
            StreamEvent::Completed { .. } | StreamEvent::Failed { .. } => {
                s.finished = Some(Instant::now());
            }
        }
        let detail = s.detail();
        let done = s.finished.is_some();
        if let Some(bar) = &s.bar {
            bar.set_message(detail);
            if done {
                bar.finish();
            }
        }
        if self.mode == ProgressMode::Log && done {
            let s = &self.streams[stream];
            tracing::info!(
                stream,
                records = s.records,
                pages = s.pages,
                seconds = s.duration().as_secs_f64(),
                "Stream finished"
            );
        }
        self.maybe_log();
    }

    fn maybe_log(&mut self) {
        if self.mode != ProgressMode::Log || self.last_log.elapsed() < LOG_EVERY {
            return;
        }
        self.last_log = Instant::now();
        for (name, s) in &self.streams {
            if s.finished.is_none() {
                tracing::info!(
                    stream = %name,
                    records = s.records,
                    pages = s.pages,
                    rate = format!("{:.0}/s", s.rate()),
                    retries = s.retries,
                    throttled_ms = s.throttled.as_millis() as u64,
                    "Progress"
                );
            }
        }
    }

    /// Stops the bars; the counters stay readable.
    pub fn finish(&mut self) {
        for s in self.streams.values_mut() {
            s.finished.get_or_insert_with(Instant::now);
            if let Some(bar) = s.bar.take() {
                bar.finish();
            }
        }
    }

    /// The counters of `stream`, if it was seen.
    pub fn get(&self, stream: &str) -> Option<&StreamProgress> {
        self.streams.get(stream)
    }
}

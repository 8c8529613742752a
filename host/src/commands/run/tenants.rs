//! Many tenants in one `run`: every config synced into its destination, `--parallel` at
//! a time, each with its own rate budget, checkpoints and instance lock. One tenant's
//! failure (a bad config included) never stops another's; each gets one summary line
//! as it ends, and the exit code combines them.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use connector_api::registry::Registry;
use connector_api::{Error, Result};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::{choose_dest, options, write_err};
use crate::cli::RunArgs;
use crate::config_file::ConfigFile;
use crate::engine::{RunSummary, sync};
use crate::exit::Exit;
use crate::progress::{Progress, ProgressMode};
use crate::sink::{self, RunStatus};

/// How one config's run ended.
#[derive(Debug, Serialize)]
struct TenantOutcome {
    /// The config file.
    config: String,
    /// The process exit code this run alone would have had.
    exit: Exit,
    /// The run's summary; absent when the config or destination could not be opened.
    summary: Option<RunSummary>,
    /// Why it failed.
    error: Option<String>,
}

impl TenantOutcome {
    /// `succeeded  qlik-sense:acme.eu.qlikcloud.com  30776 records in 1.0s  (acme.toml)`.
    fn line(&self) -> String {
        let (status, what) = match &self.summary {
            Some(s) => {
                (s.status.as_str(), format!("{}  {} records in {:.1}s", s.instance, s.records, s.seconds))
            }
            None => ("failed", "-".to_string()),
        };
        let mut line = format!("{status:<11}  {what}  ({})", self.config);
        if let Some(error) = &self.error {
            line.push_str(&format!("\n             {}", error.lines().next().unwrap_or_default()));
        }
        line
    }
}

/// Syncs every config in `paths`, `args.parallel` at a time.
pub(super) async fn run_all(
    registry: &Registry,
    paths: &[PathBuf],
    args: &RunArgs,
    out: &mut (dyn Write + Send),
) -> Result<Exit> {
    let permits = Arc::new(Semaphore::new(usize::from(args.parallel)));
    let mut runs = JoinSet::new();
    for (index, path) in paths.iter().enumerate() {
        let config = ConfigFile::load(path, registry);
        let dest = args.dest.clone();
        let options = options(args);
        let permits = permits.clone();
        let label = path.display().to_string();
        runs.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (index, one(label, config, dest.as_deref(), &options).await)
        });
    }
    let mut outcomes: Vec<Option<TenantOutcome>> = paths.iter().map(|_| None).collect();
    while let Some(joined) = runs.join_next().await {
        let (index, outcome) =
            joined.map_err(|e| Error::internal(format!("a tenant's run panicked: {e}")))?;
        if !args.quiet && !args.json {
            writeln!(out, "{}", outcome.line()).map_err(write_err)?;
        }
        outcomes[index] = Some(outcome);
    }
    let outcomes: Vec<TenantOutcome> = outcomes.into_iter().flatten().collect();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&outcomes).unwrap_or_default())
            .map_err(write_err)?;
    } else if !args.quiet {
        let count = |exit: Exit| outcomes.iter().filter(|o| o.exit == exit).count();
        let (ok, partial) = (count(Exit::Ok), count(Exit::Partial));
        writeln!(
            out,
            "{} tenants: {ok} succeeded, {partial} partial, {} failed.",
            outcomes.len(),
            outcomes.len() - ok - partial
        )
        .map_err(write_err)?;
    }
    Ok(combined(&outcomes))
}

/// One tenant's run, start to end; nothing it meets escapes as an error.
async fn one(
    label: String,
    config: Result<ConfigFile>,
    dest: Option<&str>,
    options: &crate::engine::RunOptions,
) -> TenantOutcome {
    let failed = |e: Error| TenantOutcome {
        config: label.clone(),
        exit: Exit::from_kind(e.kind()),
        summary: None,
        error: Some(e.to_string()),
    };
    let config = match config {
        Ok(config) => config,
        Err(e) => return failed(e),
    };
    let span = tracing::info_span!("tenant", instance = %config.instance());
    async {
        let mut destination = match sink::registry::open(&choose_dest(dest, &config)).await {
            Ok(d) => d,
            Err(e) => return failed(e),
        };
        let mut progress = Progress::new(ProgressMode::Quiet);
        let (summary, error) = sync(&config, destination.as_mut(), options, &mut progress).await;
        let exit = match (summary.status, &error) {
            (RunStatus::Partial, _) => Exit::Partial,
            (_, Some(e)) => Exit::from_kind(e.kind()),
            (_, None) => Exit::Ok,
        };
        TenantOutcome { config: label.clone(), exit, error: summary.error.clone(), summary: Some(summary) }
    }
    .instrument(span)
    .await
}

/// The exit code of many tenants: 0 when every one succeeded; when none did (nor
/// partly), the first one's code in config order; otherwise 5, partial.
fn combined(outcomes: &[TenantOutcome]) -> Exit {
    if outcomes.iter().all(|o| o.exit == Exit::Ok) {
        Exit::Ok
    } else if outcomes.iter().any(|o| matches!(o.exit, Exit::Ok | Exit::Partial)) {
        Exit::Partial
    } else {
        outcomes.first().map_or(Exit::Internal, |o| o.exit)
    }
}

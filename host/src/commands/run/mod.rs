//! `connector-host run`: read the selected streams of one or more configs and load
//! them into a destination, through the [`crate::engine`].

mod tenants;

use std::io::Write;
use std::path::PathBuf;

use connector_api::registry::Registry;
use connector_api::{Error, Result};

use super::{choose_dest, write_err};
use crate::cli::RunArgs;
use crate::config_file::ConfigFile;
use crate::engine::{RunOptions, RunSummary, sync};
use crate::exit::Exit;
use crate::progress::{Progress, ProgressMode};
use crate::sink::{self, RunStatus};

/// `connector-host run`: one config, or many tenants (several `--config`, or folders
/// of them).
pub async fn run(registry: &Registry, args: RunArgs, out: &mut (dyn Write + Send)) -> Result<Exit> {
    let paths = config_paths(&args.config)?;
    if let [path] = paths.as_slice() {
        let config = ConfigFile::load(path, registry)?;
        let dest_spec = choose_dest(args.dest.as_deref(), &config);
        let mut dest = sink::registry::open(&dest_spec).await?;
        let mut progress = Progress::new(ProgressMode::detect(args.quiet || args.json));
        let (summary, error) = sync(&config, dest.as_mut(), &options(&args), &mut progress).await;
        return report(&summary, error, args.quiet, args.json, out);
    }
    tenants::run_all(registry, &paths, &args, out).await
}

/// What `args` ask every run to read.
fn options(args: &RunArgs) -> RunOptions {
    RunOptions { streams: args.streams.clone(), full_refresh: args.full_refresh, atomic: args.atomic }
}

/// The config files `given` names: files as they are, folders as their `*.toml` files
/// in name order. A folder without any is a usage error, not a run of nothing.
fn config_paths(given: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for path in given {
        if !path.is_dir() {
            paths.push(path.clone());
            continue;
        }
        let entries = std::fs::read_dir(path).map_err(|e| {
            Error::config("config", format!("cannot list the folder {}: {e}", path.display()))
        })?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
            .collect();
        if found.is_empty() {
            return Err(Error::config(
                "config",
                format!("the folder {} holds no *.toml config", path.display()),
            ));
        }
        found.sort();
        paths.extend(found);
    }
    Ok(paths)
}

/// Prints `summary` as asked and turns its outcome into the exit status: the error of
/// a failed run, [`Exit::Partial`] when some streams failed and the others committed.
pub(crate) fn report(
    summary: &RunSummary,
    error: Option<Error>,
    quiet: bool,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<Exit> {
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(summary).unwrap_or_default()).map_err(write_err)?;
    } else if !quiet {
        summary.print(out).map_err(write_err)?;
    }
    match (summary.status, error) {
        (RunStatus::Partial, _) => Ok(Exit::Partial),
        (_, Some(e)) => Err(e),
        (_, None) => Ok(Exit::Ok),
    }
}

//! `connector-host demo`: the README's first command. Starts the Qlik Cloud simulator
//! in-process and runs a full sync from it, so a newcomer sees the whole pipeline
//! without an account.

use std::io::Write;

use connector_api::{Error, Result};
use qlik_sim::{SimConfig, Simulator};

use super::run::report;
use super::write_err;
use crate::config_file::ConfigFile;
use crate::engine::{RunOptions, sync};
use crate::exit::Exit;
use crate::progress::{Progress, ProgressMode};
use crate::sink;

/// Where the simulator listens when it can: a fixed port gives the simulated tenant a
/// fixed identity (`qlik-sense:127.0.0.1:47861`), so a second demo replaces the first
/// one's rows instead of adding a tenant.
const DEMO_ADDR: ([u8; 4], u16) = ([127, 0, 0, 1], 47861);

/// Runs the demo sync into `dest`.
pub async fn demo(dest: &str, quiet: bool, json_out: bool, out: &mut (dyn Write + Send)) -> Result<Exit> {
    let sim = match Simulator::start_on(SimConfig::demo(), DEMO_ADDR.into()).await {
        Ok(sim) => sim,
        Err(_) => Simulator::start(SimConfig::demo())
            .await
            .map_err(|e| Error::internal(format!("cannot start the Qlik Cloud simulator: {e}")))?,
    };
    let talk = !quiet && !json_out;
    if talk {
        writeln!(
            out,
            "Started a simulated Qlik Cloud tenant at {} (no account needed).\nSyncing every stream into {} …",
            sim.base_url(),
            sink::redact_destination(dest)
        )
        .map_err(write_err)?;
    }
    let connector = connector_api::registry::find(Simulator::CONNECTOR)?;
    let config = ConfigFile::from_json(connector, sim.connector_config(), Some("demo".to_string()))?;
    let mut destination = sink::registry::open(dest).await?;
    let mut progress = Progress::new(ProgressMode::detect(quiet || json_out));
    let (summary, error) = sync(&config, destination.as_mut(), &RunOptions::default(), &mut progress).await;
    let exit = report(&summary, error, quiet, json_out, out)?;
    if talk {
        writeln!(
            out,
            "\nNext: `connector-host runs --dest {dest}` lists runs; `connector-host docs {}` documents every table.",
            Simulator::CONNECTOR
        )
        .map_err(write_err)?;
        if let Some(path) = dest.strip_prefix("sqlite:") {
            writeln!(
                out,
                "Seats idle for 90 days:  sqlite3 {path} \"select user_id, name, licence_type, days_idle from qlik_sense__licence_usage where days_idle >= 90 order by days_idle desc\""
            )
            .map_err(write_err)?;
        }
    }
    Ok(exit)
}

//! `connector-host check --config FILE`: can this configuration read its source?

use std::io::Write;

use connector_api::{CheckStatus, Result};

use super::{table, write_err};
use crate::config_file::ConfigFile;
use crate::exit::Exit;

/// Runs the connector's check and prints each step with its status. Exits 0 when no
/// step failed (warnings allowed); otherwise with the code of the first failure's error
/// kind (3 for a rejected or under-privileged key, 2 for a bad config, 4 for the source).
pub async fn check(config: &ConfigFile, json: bool, out: &mut (dyn Write + Send)) -> Result<Exit> {
    let report = config.connector().check(config.config()).await?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report).unwrap_or_default()).map_err(write_err)?;
    } else {
        let rows: Vec<Vec<String>> = report
            .steps
            .iter()
            .map(|s| {
                let status = match s.status {
                    CheckStatus::Ok => "ok",
                    CheckStatus::Warning => "WARNING",
                    CheckStatus::Failed => "FAILED",
                    CheckStatus::Skipped => "skipped",
                };
                vec![status.to_string(), s.name.clone(), s.message.replace('\n', " ")]
            })
            .collect();
        out.write_all(table(&["STATUS", "STEP", "DETAILS"], &rows).as_bytes()).map_err(write_err)?;
        let verdict = if report.passed() { "Check passed." } else { "Check failed." };
        writeln!(out, "{verdict}").map_err(write_err)?;
    }
    Ok(match report.failure_kind() {
        _ if report.passed() => Exit::Ok,
        Some(kind) => Exit::from_kind(kind),
        None => Exit::Source,
    })
}

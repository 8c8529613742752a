//! `connector-host runs`: recent runs recorded in a destination's `_runs`.

use std::io::Write;

use connector_api::Result;

use super::write_err;
use crate::exit::Exit;
use crate::sink;
use crate::text_table;

/// Prints the `limit` most recent runs, newest first.
pub async fn runs(dest: &str, limit: usize, json: bool, out: &mut (dyn Write + Send)) -> Result<Exit> {
    let mut destination = sink::registry::open_existing(dest).await?;
    let runs = destination.recent_runs(limit).await?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&runs).unwrap_or_default()).map_err(write_err)?;
        return Ok(Exit::Ok);
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                r.run_id.clone(),
                r.instance.clone(),
                r.started_at.clone(),
                r.status.clone(),
                r.records.values().sum::<u64>().to_string(),
                r.error.as_deref().and_then(|e| e.lines().next()).unwrap_or_default().to_string(),
            ]
        })
        .collect();
    out.write_all(
        text_table::render(&["RUN", "INSTANCE", "STARTED", "STATUS", "RECORDS", "ERROR"], &rows).as_bytes(),
    )
    .map_err(write_err)?;
    Ok(Exit::Ok)
}

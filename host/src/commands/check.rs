//! `connector-host check --config FILE`: can this configuration read its source?

use std::io::Write;

use connector_api::{CheckReport, CheckStatus, Result};

use super::write_err;
use crate::config_file::ConfigFile;
use crate::exit::Exit;

/// Runs the connector's check and prints it as a checklist. Exits 0 when no step failed
/// (warnings allowed); otherwise with the code of the first failure's error kind (3 for a
/// rejected or under-privileged key, 2 for a bad config, 4 for the source).
pub async fn check(config: &ConfigFile, json: bool, out: &mut (dyn Write + Send)) -> Result<Exit> {
    let report = config.connector().check(config.config()).await?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report).unwrap_or_default()).map_err(write_err)?;
    } else {
        out.write_all(checklist(&report).as_bytes()).map_err(write_err)?;
    }
    Ok(match report.failure_kind() {
        _ if report.passed() => Exit::Ok,
        Some(kind) => Exit::from_kind(kind),
        None => Exit::Source,
    })
}

/// One line per step (status, name, what it found), then each distinct hint once, numbered
/// and referred to by the steps that share it: a non-admin key's refused streams share one
/// fix, which used to be printed once per stream.
fn checklist(report: &CheckReport) -> String {
    let mut hints: Vec<&str> = Vec::new();
    let mut text = String::new();
    for step in &report.steps {
        let status = match step.status {
            CheckStatus::Ok => "ok",
            CheckStatus::Warning => "WARNING",
            CheckStatus::Failed => "FAILED",
            CheckStatus::Skipped => "skipped",
        };
        let message = step.message.replace('\n', " ");
        text.push_str(&format!("{status:<8} {}: {message}", step.name));
        if let Some(hint) = step.hint.as_deref() {
            let n = match hints.iter().position(|h| *h == hint) {
                Some(i) => i + 1,
                None => {
                    hints.push(hint);
                    hints.len()
                }
            };
            text.push_str(&format!(" (hint {n})"));
        }
        text.push('\n');
    }
    for (i, hint) in hints.iter().enumerate() {
        text.push_str(&format!("Hint {}: {hint}\n", i + 1));
    }
    text.push_str(if report.passed() { "Check passed.\n" } else { "Check failed.\n" });
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_hint_is_printed_once_and_referred_to_by_number() {
        let mut report = CheckReport::default();
        report.push("reach", CheckStatus::Ok, "reachable");
        report.push_with_hint("licences", CheckStatus::Warning, "refused", "Use an admin key.");
        report.push_with_hint("sessions", CheckStatus::Warning, "refused", "Use an admin key.");
        report.push_with_hint("expiry", CheckStatus::Warning, "soon", "Rotate it.");
        assert_eq!(
            checklist(&report),
            "ok       reach: reachable\n\
             WARNING  licences: refused (hint 1)\n\
             WARNING  sessions: refused (hint 1)\n\
             WARNING  expiry: soon (hint 2)\n\
             Hint 1: Use an admin key.\n\
             Hint 2: Rotate it.\n\
             Check passed.\n"
        );
    }
}

//! The result of [`Connector::check`](crate::Connector::check): named steps, each ok,
//! warning, failed or skipped.
//!
//! A step's remediation is kept apart from what it found ([`CheckStep::hint`]): steps that
//! fail for one cause (every licence endpoint refusing a non-admin key) share one hint, and
//! a host prints each distinct hint once instead of once per step.

use serde::{Deserialize, Serialize};

use crate::{Error, ErrorKind};

/// Outcome of one check step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// The step passed.
    Ok,
    /// The step passed with a caveat the operator should act on (a key about to
    /// expire, a stream this key cannot read).
    Warning,
    /// The step failed; reading will not work until it is fixed.
    Failed,
    /// The step was not attempted because an earlier one failed.
    Skipped,
}

/// One named step of a check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckStep {
    /// What was checked (`authenticate`, `permissions for licence data` …).
    pub name: String,
    /// How it went.
    pub status: CheckStatus,
    /// What was found, on one line.
    pub message: String,
    /// For warnings and failures, what to do about it; steps with the same cause share it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// For a failed step, the kind of the error behind it, so a host can tell a
    /// rejected key (exit 3) from an unreachable source (exit 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<ErrorKind>,
}

/// Every step of a check, in the order they ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    /// The steps.
    pub steps: Vec<CheckStep>,
}

impl CheckStep {
    /// The message followed by `Hint: …` on its own line, for hosts that show one step at a
    /// time (Airbyte's `CONNECTION_STATUS`).
    pub fn detail(&self) -> String {
        match &self.hint {
            Some(hint) => format!("{}\nHint: {hint}", self.message),
            None => self.message.clone(),
        }
    }
}

impl CheckReport {
    /// Appends a step.
    pub fn push(&mut self, name: impl Into<String>, status: CheckStatus, message: impl Into<String>) {
        self.steps.push(CheckStep {
            name: name.into(),
            status,
            message: message.into(),
            hint: None,
            error_kind: None,
        });
    }

    /// Appends a step with what to do about what it found.
    pub fn push_with_hint(
        &mut self,
        name: impl Into<String>,
        status: CheckStatus,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.steps.push(CheckStep {
            name: name.into(),
            status,
            message: message.into(),
            hint: Some(hint.into()),
            error_kind: None,
        });
    }

    /// Appends a failed step caused by `error`: its message (with context), hint and kind.
    pub fn fail(&mut self, name: impl Into<String>, error: &Error) {
        self.steps.push(CheckStep {
            name: name.into(),
            status: CheckStatus::Failed,
            message: error.without_hint(),
            hint: error.hint().map(str::to_string),
            error_kind: Some(error.kind()),
        });
    }

    /// The error kind of the first failed step, if any step failed because of one.
    pub fn failure_kind(&self) -> Option<ErrorKind> {
        self.steps.iter().filter(|s| s.status == CheckStatus::Failed).find_map(|s| s.error_kind)
    }

    /// True when no step failed (warnings allowed).
    pub fn passed(&self) -> bool {
        !self.steps.iter().any(|s| s.status == CheckStatus::Failed)
    }

    /// The worst status of any step, `Ok` for an empty report.
    pub fn worst(&self) -> CheckStatus {
        let rank = |s: CheckStatus| match s {
            CheckStatus::Ok | CheckStatus::Skipped => 0,
            CheckStatus::Warning => 1,
            CheckStatus::Failed => 2,
        };
        self.steps.iter().map(|s| s.status).max_by_key(|s| rank(*s)).unwrap_or(CheckStatus::Ok)
    }
}

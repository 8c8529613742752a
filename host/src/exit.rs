//! The process exit codes `connector-host` documents, and how errors map to them.
//!
//! Scripts and schedulers branch on these codes, so they are part of the interface:
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success |
//! | 1 | internal error (a bug, or the destination failed) |
//! | 2 | usage or configuration error (bad flag, bad config file, unknown connector) |
//! | 3 | authentication or permission error (rejected or under-privileged API key) |
//! | 4 | the source failed after retries (unreachable, throttled, malformed answers) |

use std::process::ExitCode;

use connector_api::ErrorKind;

/// A documented exit status of `connector-host`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: everything worked.
    Ok,
    /// 1: a bug or an environment failure inside the host or a destination.
    Internal,
    /// 2: the command line or the config file is wrong.
    Usage,
    /// 3: the source rejected the credentials or lacks a permission.
    Auth,
    /// 4: the source failed, even after retries.
    Source,
}

impl Exit {
    /// The numeric process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Internal => 1,
            Exit::Usage => 2,
            Exit::Auth => 3,
            Exit::Source => 4,
        }
    }

    /// The exit status for an error of `kind`.
    pub fn from_kind(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::Config => Exit::Usage,
            ErrorKind::Auth | ErrorKind::Permission => Exit::Auth,
            ErrorKind::NotFound | ErrorKind::RateLimited | ErrorKind::Transient | ErrorKind::Source => {
                Exit::Source
            }
            _ => Exit::Internal,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_documented_codes() {
        assert_eq!(Exit::from_kind(ErrorKind::Config).code(), 2);
        assert_eq!(Exit::from_kind(ErrorKind::Auth).code(), 3);
        assert_eq!(Exit::from_kind(ErrorKind::Permission).code(), 3);
        assert_eq!(Exit::from_kind(ErrorKind::RateLimited).code(), 4);
        assert_eq!(Exit::from_kind(ErrorKind::Transient).code(), 4);
        assert_eq!(Exit::from_kind(ErrorKind::Internal).code(), 1);
    }
}

//! The process exit codes `connector-host` documents, and how errors map to them.
//!
//! Scripts and schedulers branch on these codes, so they are part of the interface and
//! each means exactly one thing:
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success: every selected stream was committed |
//! | 1 | internal error (a bug in the host or a connector) |
//! | 2 | usage or configuration error (bad flag, bad config file, unknown connector or stream) |
//! | 3 | the source rejected the credentials or lacks a permission (the Qlik API key) |
//! | 4 | the source failed, even after retries (unreachable, throttled, malformed answers) |
//! | 5 | partial: some streams failed, every other stream was committed |
//! | 6 | the destination failed: cannot open, connect to, authenticate to or write it |
//! | 7 | conflict: another run of the same instance holds the destination, or a table with our name is not ours |
//! | 130 | interrupted by SIGINT or SIGTERM; the run rolled back |

use std::process::ExitCode;

use connector_api::ErrorKind;

/// The exit-code table as `--help` and the README print it.
pub const TABLE: &str = "Exit codes: 0 ok; 1 internal error; 2 usage or config error; 3 source \
authentication or permission error (the API key); 4 source failed after retries; 5 partial (some \
streams failed, the others were committed); 6 destination error (cannot open, connect, log in or \
write); 7 conflict (another run of this instance is loading this destination, or a table with our \
name is not ours); 130 interrupted (SIGINT/SIGTERM, rolled back).";

/// A documented exit status of `connector-host`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: everything worked.
    Ok,
    /// 1: a bug inside the host or a connector.
    Internal,
    /// 2: the command line or the config file is wrong.
    Usage,
    /// 3: the source rejected the credentials or lacks a permission.
    Auth,
    /// 4: the source failed, even after retries.
    Source,
    /// 5: some streams failed; every other stream was committed.
    Partial,
    /// 6: the destination cannot be opened, reached, logged into or written.
    Destination,
    /// 7: another run holds the instance, or a table in the way is not ours.
    Conflict,
    /// 130: stopped by SIGINT or SIGTERM and rolled back.
    Interrupted,
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
            Exit::Partial => 5,
            Exit::Destination => 6,
            Exit::Conflict => 7,
            Exit::Interrupted => 130,
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
            ErrorKind::Destination => Exit::Destination,
            ErrorKind::Conflict => Exit::Conflict,
            ErrorKind::Interrupted => Exit::Interrupted,
            _ => Exit::Internal,
        }
    }
}

impl serde::Serialize for Exit {
    /// As its numeric code, the way scripts see it.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(self.code())
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
        assert_eq!(Exit::from_kind(ErrorKind::Destination).code(), 6);
        assert_eq!(Exit::from_kind(ErrorKind::Conflict).code(), 7);
        assert_eq!(Exit::from_kind(ErrorKind::Interrupted).code(), 130);
        assert_eq!(Exit::from_kind(ErrorKind::Internal).code(), 1);
    }

    #[test]
    fn every_code_is_in_the_table() {
        for exit in [
            Exit::Ok,
            Exit::Internal,
            Exit::Usage,
            Exit::Auth,
            Exit::Source,
            Exit::Partial,
            Exit::Destination,
            Exit::Conflict,
            Exit::Interrupted,
        ] {
            assert!(TABLE.contains(&format!(" {} ", exit.code())), "{exit:?}");
        }
    }
}

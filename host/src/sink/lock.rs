//! One run per instance and destination: an exclusive lock file per instance.
//!
//! SQLite and folder destinations take an OS file lock (`flock`) on
//! `<lock dir>/<instance>.lock`. The operating system releases it when the process
//! ends, however it ends, so a killed run never leaves a stale lock behind; lock files
//! are never deleted, since deleting a lock file races with the next run opening it.
//! PostgreSQL uses a session advisory lock instead (see [`super::sql::postgres`]).

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use connector_api::{Error, ErrorKind, Result};
use sha2::{Digest, Sha256};

use super::schema::sql_name;

/// A held instance lock; dropping it releases the lock.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
}

/// A short, stable hex tag of `instance` for names with a length limit (lock files,
/// staging tables, advisory lock keys).
pub fn instance_tag(instance: &str) -> String {
    hex::encode(&Sha256::digest(instance.as_bytes())[..6])
}

/// The lock file of `instance` in `dir`: readable, with a hash so instances whose
/// names differ only in punctuation do not share a file.
fn lock_path(dir: &Path, instance: &str) -> PathBuf {
    let readable: String = sql_name(instance).chars().take(60).collect();
    dir.join(format!("{readable}-{}.lock", instance_tag(instance)))
}

impl InstanceLock {
    /// Takes the lock of `instance` in `dir` (created if missing) without waiting:
    /// `Ok(None)` when another run holds it.
    pub fn try_acquire(dir: &Path, instance: &str) -> Result<Option<InstanceLock>> {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::new(ErrorKind::Destination, format!("cannot create lock folder {}: {e}", dir.display()))
        })?;
        let path = lock_path(dir, instance);
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(|e| {
            Error::new(ErrorKind::Destination, format!("cannot open lock file {}: {e}", path.display()))
        })?;
        match file.try_lock() {
            Ok(()) => Ok(Some(InstanceLock { _file: file })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => {
                Err(Error::new(ErrorKind::Destination, format!("cannot lock {}: {e}", path.display())))
            }
        }
    }
}

/// The error for a run refused because `other` (a description of the live run, if
/// known) holds `instance` in `destination`.
pub fn held_by_another_run(instance: &str, destination: &str, other: Option<String>) -> Error {
    let who = other.unwrap_or_else(|| "another run".to_string());
    Error::new(
        ErrorKind::Conflict,
        format!("{who} is already syncing {instance} into {destination}; this run did not start"),
    )
    .with_hint("Wait for that run to finish (`connector-host runs` lists it), or stop it; runs of other tenants are not affected")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = InstanceLock::try_acquire(dir.path(), "qlik-sense:a.example").unwrap();
        assert!(first.is_some());
        assert!(InstanceLock::try_acquire(dir.path(), "qlik-sense:a.example").unwrap().is_none());
        assert!(InstanceLock::try_acquire(dir.path(), "qlik-sense:b.example").unwrap().is_some());
        drop(first);
        assert!(InstanceLock::try_acquire(dir.path(), "qlik-sense:a.example").unwrap().is_some());
    }
}

//! The checkpoint bookkeeping of a run, one for every destination (SQL and files
//! alike), so each keeps the contract's promises about state the same way:
//! - a full-refresh (staged) stream's checkpoint waits for the final swap and is saved
//!   only if the stream did not fail;
//! - an incremental stream's checkpoint waits with what its store needs to commit it
//!   (a file's length; nothing for a database, whose transaction holds the rows) until
//!   the [`CommitPolicy`] says enough rows or time have passed, and is then committed
//!   with every row before it;
//! - only incremental rows count towards that policy: staged rows are committed by
//!   the swap, whatever their number.
//!
//! A store decides how a commit is carried out, never when.

use std::collections::BTreeMap;

use connector_api::Result;
use serde_json::Value;

use super::CommitPolicy;

/// A run's checkpoints not committed yet; `P` is what the store needs, beside the
/// value, to commit an incremental one.
#[derive(Debug)]
pub struct Checkpoints<P> {
    /// Full-refresh checkpoints, saved by the final swap.
    finals: BTreeMap<String, Value>,
    /// Incremental checkpoints not committed yet.
    pending: BTreeMap<String, (Value, P)>,
    policy: CommitPolicy,
}

impl<P> Default for Checkpoints<P> {
    fn default() -> Self {
        Checkpoints { finals: BTreeMap::new(), pending: BTreeMap::new(), policy: CommitPolicy::default() }
    }
}

impl<P> Checkpoints<P> {
    /// Counts `rows` written to a stream, which is `staged` for full refresh.
    pub fn wrote(&mut self, staged: bool, rows: usize) {
        if !staged {
            self.policy.rows(rows);
        }
    }

    /// Keeps `value`, a checkpoint of `stream`: a staged stream's until the final swap,
    /// an incremental one's with what `at` says the store needs to commit it. Returns
    /// whether the incremental checkpoints are due to be committed now.
    pub fn keep(
        &mut self,
        stream: &str,
        value: Value,
        staged: bool,
        at: impl FnOnce() -> Result<P>,
    ) -> Result<bool> {
        if staged {
            self.finals.insert(stream.to_string(), value);
            return Ok(false);
        }
        self.pending.insert(stream.to_string(), (value, at()?));
        Ok(self.policy.due())
    }

    /// Takes the incremental checkpoints for the commit that saves them, and starts
    /// counting towards the next.
    pub fn take_pending(&mut self) -> BTreeMap<String, (Value, P)> {
        self.policy.committed();
        std::mem::take(&mut self.pending)
    }

    /// Takes `stream`'s incremental checkpoint, if one waits, for the final commit.
    pub fn take_pending_of(&mut self, stream: &str) -> Option<(Value, P)> {
        self.pending.remove(stream)
    }

    /// Takes `stream`'s full-refresh checkpoint for the final swap; a stream in
    /// `failed` has none to save.
    pub fn take_final(&mut self, stream: &str, failed: &BTreeMap<String, String>) -> Option<Value> {
        let value = self.finals.remove(stream);
        value.filter(|_| !failed.contains_key(stream))
    }

    /// What the final commit saves: the full-refresh checkpoints of streams not in
    /// `failed`, then every incremental one waiting.
    pub fn to_save<'a>(
        &'a self,
        failed: &'a BTreeMap<String, String>,
    ) -> impl Iterator<Item = (&'a String, &'a Value)> {
        let finals = self.finals.iter().filter(|(s, _)| !failed.contains_key(*s));
        finals.chain(self.pending.iter().map(|(s, (v, _))| (s, v)))
    }

    /// Whether an incremental checkpoint waits.
    pub fn waiting(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The policy counting incremental rows and time since the last commit.
    pub fn policy(&self) -> &CommitPolicy {
        &self.policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_checkpoints_wait_for_the_swap_and_failed_streams_save_none() {
        let mut books: Checkpoints<u64> = Checkpoints::default();
        books.wrote(true, crate::sink::BATCH_ROWS * 2);
        assert!(!books.keep("users", Value::from(1), true, || unreachable!()).unwrap());
        assert!(!books.policy().pending(), "staged rows do not count");
        assert!(!books.waiting());
        let failed = BTreeMap::from([("users".to_string(), "boom".to_string())]);
        assert_eq!(books.to_save(&failed).count(), 0);
        assert_eq!(books.to_save(&BTreeMap::new()).count(), 1);
        assert_eq!(books.take_final("users", &failed), None);
    }

    #[test]
    fn incremental_checkpoints_are_due_after_enough_rows() {
        let mut books: Checkpoints<u64> = Checkpoints::default();
        books.wrote(false, 10);
        assert!(!books.keep("events", Value::from(1), false, || Ok(10)).unwrap());
        books.wrote(false, crate::sink::BATCH_ROWS);
        assert!(books.keep("events", Value::from(2), false, || Ok(20)).unwrap());
        let taken = books.take_pending();
        assert_eq!(taken.get("events"), Some(&(Value::from(2), 20)));
        assert!(!books.waiting() && !books.policy().pending());
    }
}

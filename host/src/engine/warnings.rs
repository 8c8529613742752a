//! The warnings a connector logs during a run (a deprecation Qlik announces, a read that
//! fell back to a slower way), kept for the run summary and `_runs`: a warning in a log
//! nobody reads is a warning nobody heeds.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

/// Distinct warnings kept per run; the rest are counted.
const MAX_WARNINGS: usize = 20;

/// Longest warning kept, in characters; a longer one is cut.
const MAX_CHARS: usize = 1_000;

/// A run's distinct warnings, in the order first logged, bounded in number and length and
/// scrubbed of every registered secret.
#[derive(Debug, Default)]
pub(crate) struct Warnings {
    kept: Vec<String>,
    /// Hashes of every distinct warning seen, kept or not.
    seen: HashSet<u64>,
    /// Distinct warnings past [`MAX_WARNINGS`].
    omitted: usize,
}

impl Warnings {
    /// Keeps `message` unless the same text was logged before.
    pub(crate) fn add(&mut self, message: &str) {
        let mut text: String =
            connector_api::secret::scrub(message.trim()).chars().take(MAX_CHARS + 1).collect();
        if text.chars().count() > MAX_CHARS {
            text = text.chars().take(MAX_CHARS - 1).chain(['…']).collect();
        }
        let mut hasher = DefaultHasher::new();
        text.hash(&mut hasher);
        if !self.seen.insert(hasher.finish()) {
            return;
        }
        if self.kept.len() < MAX_WARNINGS {
            self.kept.push(text);
        } else {
            self.omitted += 1;
        }
    }

    /// The warnings kept, and a last one counting those left out.
    pub(crate) fn list(&self) -> Vec<String> {
        let mut list = self.kept.clone();
        if self.omitted > 0 {
            list.push(format!(
                "{} more distinct warnings are left out here; the log has them all.",
                self.omitted
            ));
        }
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_distinct_bounded_and_scrubbed() {
        connector_api::secret::register("warning-canary-5e3a");
        let mut warnings = Warnings::default();
        for _ in 0..3 {
            warnings.add("Qlik announces a deprecation.");
        }
        warnings.add("a key warning-canary-5e3a echoed");
        warnings.add(&"x".repeat(5_000));
        for i in 0..40 {
            warnings.add(&format!("warning {i}"));
            warnings.add(&format!("warning {i}"));
        }
        let list = warnings.list();
        assert_eq!(list.len(), MAX_WARNINGS + 1, "{list:?}");
        assert_eq!(list[0], "Qlik announces a deprecation.");
        assert!(!list[1].contains("warning-canary-5e3a"), "{}", list[1]);
        assert_eq!(list[2].chars().count(), MAX_CHARS);
        assert!(list[2].ends_with('…'));
        assert_eq!(list[MAX_WARNINGS], "23 more distinct warnings are left out here; the log has them all.");
    }
}

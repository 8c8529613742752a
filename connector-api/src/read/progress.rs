//! When a stream read in several chains may be checkpointed, and at which cursor.
//!
//! A checkpoint promises that every record up to its cursor has been delivered. Chains come
//! in groups in cursor order (each group's items come after the previous group's); a group
//! is one chain, or chains read alongside each other over the same stretch. The promise
//! holds for the newest cursor of the groups already read to the end, plus the progress of
//! the first unfinished group when every unfinished chain in it ascends and has read
//! something: the oldest of their newest cursors. A later group's progress counts only
//! once every group before it is done. The checkpoint never moves backwards.

use crate::cursor::Cursor;

use super::chain::Order;

struct ChainProgress {
    order: Order,
    /// Whether the chain is in the group of the chain before it.
    alongside: bool,
    done: bool,
    newest: Option<Cursor>,
}

/// The cursor progress of one stream's chains.
pub(crate) struct Progress {
    chains: Vec<ChainProgress>,
    /// The newest cursor already checkpointed (initially the saved one).
    checkpointed: Option<Cursor>,
    /// Whether this read emitted a checkpoint.
    emitted: bool,
}

impl Progress {
    /// Progress of chains of the given order and grouping (whether each is read alongside
    /// the one before it), resuming from `saved`.
    pub(crate) fn new(chains: impl IntoIterator<Item = (Order, bool)>, saved: Option<Cursor>) -> Progress {
        let chains = chains
            .into_iter()
            .map(|(order, alongside)| ChainProgress { order, alongside, done: false, newest: None })
            .collect();
        Progress { chains, checkpointed: saved, emitted: false }
    }

    /// Chain `i` delivered records up to `newest`; returns the checkpoint to emit, if any.
    pub(crate) fn page(&mut self, i: usize, newest: Option<&Cursor>) -> Option<Cursor> {
        if let Some(newest) = newest {
            Cursor::advance(&mut self.chains[i].newest, newest.clone());
        }
        self.next_checkpoint()
    }

    /// Chain `i` was read to its end; returns the checkpoint to emit, if any.
    pub(crate) fn done(&mut self, i: usize) -> Option<Cursor> {
        self.chains[i].done = true;
        self.next_checkpoint()
    }

    /// The newest cursor every record up to which is delivered, if newer than the last
    /// checkpoint (the saved one to begin with).
    fn next_checkpoint(&mut self) -> Option<Cursor> {
        let mut covered = self.checkpointed.clone();
        for group in self.groups() {
            if group.iter().all(|c| c.done) {
                for newest in group.iter().filter_map(|c| c.newest.clone()) {
                    Cursor::advance(&mut covered, newest);
                }
                continue;
            }
            let running = group.iter().filter(|c| !c.done);
            let reached: Option<Vec<&Cursor>> =
                running.map(|c| c.newest.as_ref().filter(|_| c.order == Order::Ascending)).collect();
            if let Some(oldest) = reached.and_then(|r| r.into_iter().min_by_key(|c| c.at)) {
                Cursor::advance(&mut covered, oldest.clone());
            }
            break;
        }
        let covered = covered?;
        let newer = self.checkpointed.as_ref().is_none_or(|c| covered.at > c.at);
        newer.then(|| {
            self.checkpointed = Some(covered.clone());
            self.emitted = true;
            covered
        })
    }

    /// The chains in groups read alongside each other, in cursor order.
    fn groups(&self) -> impl Iterator<Item = &[ChainProgress]> {
        self.chains.chunk_by(|_, next| next.alongside)
    }

    /// After the last chain: the saved cursor when nothing newer came, so every read of an
    /// incremental stream ends with its checkpoint (a protocol consumer that keeps only
    /// this read's states, such as an Airbyte platform, keeps the cursor).
    pub(crate) fn unreported(&self) -> Option<Cursor> {
        if self.emitted { None } else { self.checkpointed.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Cursor {
        Cursor::parse(&format!("2026-01-01T00:00:{s}Z")).unwrap()
    }

    fn raw(c: Option<Cursor>) -> Option<String> {
        c.map(|c| c.raw().to_string())
    }

    #[test]
    fn an_ascending_chain_checkpoints_each_page() {
        let mut p = Progress::new([(Order::Ascending, false)], None);
        assert_eq!(raw(p.page(0, Some(&at("01")))), Some("2026-01-01T00:00:01Z".into()));
        assert_eq!(p.page(0, Some(&at("01"))), None, "no repeat of the same checkpoint");
        assert_eq!(raw(p.page(0, Some(&at("05")))), Some("2026-01-01T00:00:05Z".into()));
        assert_eq!(p.done(0), None);
    }

    #[test]
    fn an_unordered_chain_checkpoints_only_at_its_end() {
        let mut p = Progress::new([(Order::Unordered, false)], Some(at("00")));
        assert_eq!(p.page(0, Some(&at("09"))), None);
        assert_eq!(p.page(0, Some(&at("03"))), None);
        assert_eq!(raw(p.done(0)), Some("2026-01-01T00:00:09Z".into()));
    }

    #[test]
    fn a_later_slice_counts_only_once_the_earlier_ones_are_done() {
        let mut p = Progress::new([(Order::Ascending, false); 3], None);
        assert_eq!(p.page(1, Some(&at("20"))), None, "slice 1 is ahead of slice 0");
        assert_eq!(p.page(2, Some(&at("40"))), None);
        assert_eq!(raw(p.page(0, Some(&at("05")))), Some("2026-01-01T00:00:05Z".into()));
        assert_eq!(p.done(2), None);
        assert_eq!(raw(p.done(0)), Some("2026-01-01T00:00:20Z".into()), "slice 1's progress now counts");
        assert_eq!(raw(p.done(1)), Some("2026-01-01T00:00:40Z".into()), "and slice 2, done, entirely");
    }

    #[test]
    fn chains_alongside_each_other_count_as_far_as_the_least_advanced() {
        // An archive (ascending), then three listings over the same later stretch.
        let chains = [
            (Order::Ascending, false),
            (Order::Ascending, false),
            (Order::Ascending, true),
            (Order::Ascending, true),
        ];
        let mut p = Progress::new(chains, None);
        assert_eq!(raw(p.page(1, Some(&at("50")))), None, "the archive is not done");
        assert_eq!(raw(p.done(0)), None, "the archive read nothing; two listings have read nothing");
        assert_eq!(p.page(2, Some(&at("30"))), None, "listing 3 has read nothing yet");
        assert_eq!(
            raw(p.page(3, Some(&at("20")))),
            Some("2026-01-01T00:00:20Z".into()),
            "the oldest of 50, 30, 20"
        );
        assert_eq!(
            raw(p.done(3)),
            Some("2026-01-01T00:00:30Z".into()),
            "a finished listing no longer holds it back"
        );
        assert_eq!(raw(p.done(2)), Some("2026-01-01T00:00:50Z".into()));
        assert_eq!(raw(p.page(1, Some(&at("55")))), Some("2026-01-01T00:00:55Z".into()));
    }

    #[test]
    fn an_unordered_chain_alongside_holds_its_group_until_all_are_done() {
        let mut p = Progress::new([(Order::Ascending, false), (Order::Unordered, true)], None);
        assert_eq!(p.page(0, Some(&at("40"))), None, "its partner may still hold older items");
        assert_eq!(p.page(1, Some(&at("10"))), None);
        assert_eq!(raw(p.done(1)), Some("2026-01-01T00:00:40Z".into()));
        assert_eq!(p.done(0), None);
    }

    #[test]
    fn the_checkpoint_never_moves_back_from_the_saved_cursor() {
        let mut p = Progress::new([(Order::Ascending, false)], Some(at("30")));
        assert_eq!(p.page(0, Some(&at("10"))), None);
        assert_eq!(p.done(0), None);
        assert_eq!(raw(p.unreported()), Some("2026-01-01T00:00:30Z".into()), "the saved cursor, once");
        let mut p = Progress::new([(Order::Ascending, false)], Some(at("30")));
        assert_eq!(raw(p.page(0, Some(&at("31")))), Some("2026-01-01T00:00:31Z".into()));
        assert_eq!(p.unreported(), None);
    }
}

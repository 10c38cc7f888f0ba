//! Transactional offset commits waiting for their transaction to end (KIP-98, KIP-447).
//!
//! TxnOffsetCommit writes a producer's offsets to the group's `__consumer_offsets` partition in
//! a transactional batch; nobody may see them before the transaction commits. They wait here,
//! per producer id, until the transaction's marker lands in that partition: a commit makes
//! them the group's committed offsets (unless the partition was committed again after they
//! were written), an abort drops them. The live coordinator and the replay of a partition
//! settle transactions with the same code, so a reloaded coordinator holds exactly the offsets
//! the one before it held.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::CommittedOffset;

/// A group's offsets by (topic, partition).
type OffsetMap = BTreeMap<(String, i32), CommittedOffset>;

/// One group's offsets of open transactions, by producer id.
#[derive(Debug, Default)]
pub struct PendingOffsets {
    by_producer: BTreeMap<i64, OffsetMap>,
}

impl PendingOffsets {
    /// Holds `offset` for `key` in `producer_id`'s open transaction (a later commit of the
    /// same partition in the same transaction replaces it).
    pub fn add(&mut self, producer_id: i64, key: (String, i32), offset: CommittedOffset) {
        self.by_producer
            .entry(producer_id)
            .or_default()
            .insert(key, offset);
    }

    /// Whether an open transaction holds an offset for `key`: OffsetFetch with
    /// `require_stable` must not answer for it yet, and retention must not expire it.
    pub fn contains(&self, key: &(String, i32)) -> bool {
        self.by_producer.values().any(|o| o.contains_key(key))
    }

    /// Whether no transaction of this group is open.
    pub fn is_empty(&self) -> bool {
        self.by_producer.is_empty()
    }

    /// The producers with an open transaction in this group (what a transaction marker
    /// has to visit).
    pub fn producers(&self) -> impl Iterator<Item = i64> + '_ {
        self.by_producer.keys().copied()
    }

    /// Every partition some open transaction holds an offset for (deleting the group writes
    /// a tombstone for each, as Kafka does).
    pub fn partitions(&self) -> BTreeSet<&(String, i32)> {
        self.by_producer.values().flat_map(|o| o.keys()).collect()
    }

    /// Drops every open transaction's offset of `key`: a tombstone (OffsetDelete, DeleteGroups,
    /// retention) removes them along with the committed offset, as in Kafka.
    pub fn remove_partition(&mut self, key: &(String, i32)) {
        self.by_producer.retain(|_, offsets| {
            offsets.remove(key);
            !offsets.is_empty()
        });
    }

    /// Ends `producer_id`'s transaction. On commit each of its offsets becomes the committed
    /// one unless `committed` holds one written later (a higher record offset: a plain commit
    /// after the transactional one wins, as in Kafka, also after compaction); on abort they
    /// are dropped.
    pub fn complete(&mut self, producer_id: i64, commit: bool, committed: &mut OffsetMap) {
        let Some(offsets) = self.by_producer.remove(&producer_id) else {
            return;
        };
        if !commit {
            return;
        }
        for (key, offset) in offsets {
            let newer = committed
                .get(&key)
                .is_some_and(|c| c.record_offset > offset.record_offset);
            if !newer {
                committed.insert(key, offset);
            }
        }
    }
}

/// Which groups hold offsets of which producer's open transaction, so a transaction marker
/// visits only those groups instead of every group of its partition.
#[derive(Debug, Default)]
pub struct OpenTransactions {
    groups: HashMap<i64, BTreeSet<String>>,
}

impl OpenTransactions {
    /// Notes that `group` holds offsets of `producer_id`'s open transaction.
    pub fn insert(&mut self, producer_id: i64, group: &str) {
        self.groups
            .entry(producer_id)
            .or_default()
            .insert(group.to_string());
    }

    /// Takes the groups holding offsets of `producer_id` that `settles` picks (those of the
    /// `__consumer_offsets` partition whose marker arrived); the others stay.
    pub fn take(&mut self, producer_id: i64, mut settles: impl FnMut(&str) -> bool) -> Vec<String> {
        let Some(groups) = self.groups.get_mut(&producer_id) else {
            return Vec::new();
        };
        let (taken, kept): (BTreeSet<String>, BTreeSet<String>) =
            std::mem::take(groups).into_iter().partition(|g| settles(g));
        if kept.is_empty() {
            self.groups.remove(&producer_id);
        } else {
            *groups = kept;
        }
        taken.into_iter().collect()
    }

    /// Forgets every group `keep` rejects (their partition is no longer coordinated here).
    pub fn retain_groups(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.groups.retain(|_, groups| {
            groups.retain(|g| keep(g));
            !groups.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(offset: i64, record_offset: i64) -> CommittedOffset {
        CommittedOffset {
            offset,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: 0,
            expire_timestamp: -1,
            record_offset,
        }
    }

    fn key(partition: i32) -> (String, i32) {
        ("t".to_string(), partition)
    }

    fn offsets(committed: &OffsetMap) -> Vec<(i32, i64)> {
        committed.iter().map(|(k, v)| (k.1, v.offset)).collect()
    }

    #[test]
    fn commit_keeps_the_later_written_offset_and_abort_drops() {
        let mut committed = OffsetMap::from([(key(0), at(5, 10)), (key(1), at(6, 30))]);
        let mut pending = PendingOffsets::default();
        pending.add(1, key(0), at(7, 20));
        pending.add(1, key(1), at(8, 21));
        pending.add(2, key(2), at(9, 22));
        assert!(pending.contains(&key(2)) && !pending.contains(&key(3)));
        assert_eq!(pending.producers().collect::<Vec<_>>(), [1, 2]);

        pending.complete(1, true, &mut committed);
        assert_eq!(
            offsets(&committed),
            [(0, 7), (1, 6)],
            "partition 1 was committed again after the transaction wrote it"
        );
        pending.complete(2, false, &mut committed);
        assert_eq!(offsets(&committed), [(0, 7), (1, 6)]);
        assert!(pending.is_empty());
        // A marker with nothing pending changes nothing.
        pending.complete(1, true, &mut committed);
        assert_eq!(offsets(&committed), [(0, 7), (1, 6)]);
    }

    #[test]
    fn a_tombstone_drops_the_partition_from_every_open_transaction() {
        let mut pending = PendingOffsets::default();
        pending.add(1, key(0), at(7, 20));
        pending.add(2, key(0), at(8, 21));
        pending.add(2, key(1), at(9, 22));
        assert_eq!(pending.partitions(), BTreeSet::from([&key(0), &key(1)]));
        pending.remove_partition(&key(0));
        assert_eq!(pending.producers().collect::<Vec<_>>(), [2]);
        pending.remove_partition(&key(1));
        assert!(pending.is_empty());
    }

    #[test]
    fn open_transactions_are_taken_per_partition() {
        let mut open = OpenTransactions::default();
        open.insert(1, "a");
        open.insert(1, "b");
        open.insert(2, "a");
        assert_eq!(open.take(1, |g| g == "a"), ["a"]);
        assert_eq!(open.take(1, |g| g == "a"), Vec::<String>::new());
        open.retain_groups(|g| g != "a");
        assert_eq!(open.take(2, |_| true), Vec::<String>::new());
        assert_eq!(open.take(1, |_| true), ["b"]);
    }
}

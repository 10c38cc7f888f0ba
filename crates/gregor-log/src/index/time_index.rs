//! `.timeindex`: maps timestamps to offsets, for ListOffsets by time and for retention.
//!
//! Entry (12 bytes): `timestamp i64 | relativeOffset u32`. Timestamps are strictly increasing:
//! an entry is added beside each offset index entry only when the segment's largest timestamp
//! so far has grown, and once more when the segment stops being active, so the last entry holds
//! the segment's largest timestamp.

use super::{IndexEntry, IndexFile};

/// A `.timeindex` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    /// Largest timestamp seen up to `relative_offset`.
    pub timestamp: i64,
    /// Offset (relative to the segment base) of the batch that held that timestamp.
    pub relative_offset: u32,
}

impl IndexEntry for TimestampOffset {
    const SIZE: usize = 12;

    fn decode(buf: &[u8]) -> Self {
        TimestampOffset {
            timestamp: i64::from_be_bytes(buf[0..8].try_into().expect("8 bytes")),
            relative_offset: u32::from_be_bytes(buf[8..12].try_into().expect("4 bytes")),
        }
    }

    fn encode(&self, buf: &mut [u8]) {
        buf[0..8].copy_from_slice(&self.timestamp.to_be_bytes());
        buf[8..12].copy_from_slice(&self.relative_offset.to_be_bytes());
    }

    fn relative_offset(&self) -> u32 {
        self.relative_offset
    }

    // Kafka keeps the last slot for the entry written when the segment is rolled.
    const RESERVED_SLOTS: usize = 1;
}

/// The time index of one segment.
pub type TimeIndex = IndexFile<TimestampOffset>;

impl TimeIndex {
    /// Appends `entry` if its timestamp is larger than the last one's (Kafka's `maybeAppend`).
    /// With `final_entry` the fullness check is skipped: the entry written when a segment is
    /// rolled goes into the slot Kafka reserves for it.
    pub fn maybe_append(&mut self, entry: TimestampOffset, final_entry: bool) {
        if self.last().is_some_and(|last| {
            entry.timestamp <= last.timestamp || entry.relative_offset < last.relative_offset
        }) {
            return;
        }
        if self.is_full() && !final_entry {
            return;
        }
        self.push(entry);
    }

    /// The last entry whose timestamp is strictly less than `timestamp`: every record at or
    /// before its offset is older than `timestamp`, so a search for the first record at or
    /// after `timestamp` may start just past it.
    pub fn lookup_before(&self, timestamp: i64) -> Option<TimestampOffset> {
        // `timestamp - 1` would overflow for `i64::MIN` (any i64 can come from a client).
        let n = self.entries().partition_point(|e| e.timestamp < timestamp);
        n.checked_sub(1).map(|i| self.entries()[i])
    }

    /// Drops entries for offsets `>= relative_offset` (truncation).
    pub fn truncate_to_offset(&mut self, relative_offset: u32) {
        let keep = self
            .entries()
            .partition_point(|e| e.relative_offset < relative_offset);
        self.truncate_entries(keep);
    }

    /// Whether the entries are ordered as Kafka requires (timestamps strictly increasing,
    /// offsets non-decreasing) and stay below `next_relative_offset`.
    pub fn is_sane(&self, next_relative_offset: u64) -> bool {
        let entries = self.entries();
        entries.windows(2).all(|w| {
            w[0].timestamp < w[1].timestamp && w[0].relative_offset <= w[1].relative_offset
        }) && entries
            .last()
            .is_none_or(|e| u64::from(e.relative_offset) < next_relative_offset.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(timestamp: i64, relative_offset: u32) -> TimestampOffset {
        TimestampOffset {
            timestamp,
            relative_offset,
        }
    }

    #[test]
    fn keeps_timestamps_strictly_increasing() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = TimeIndex::create(dir.path().join("0.timeindex"), 4).unwrap();
        index.maybe_append(entry(100, 0), false);
        index.maybe_append(entry(100, 5), false);
        index.maybe_append(entry(90, 6), false);
        index.maybe_append(entry(200, 9), false);
        index.maybe_append(entry(300, 12), false);
        assert!(index.is_full());
        index.maybe_append(entry(400, 15), false);
        assert_eq!(index.entries().len(), 3);
        index.maybe_append(entry(400, 15), true);
        assert_eq!(
            index.entries(),
            &[entry(100, 0), entry(200, 9), entry(300, 12), entry(400, 15)]
        );
        assert_eq!(index.lookup_before(100), None);
        assert_eq!(index.lookup_before(101), Some(entry(100, 0)));
        assert_eq!(index.lookup_before(300), Some(entry(200, 9)));
        assert!(index.is_sane(16) && !index.is_sane(15));
    }
}

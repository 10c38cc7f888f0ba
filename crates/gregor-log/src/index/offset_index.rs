//! `.index`: maps offsets to positions in the segment's `.log`.
//!
//! Entry (8 bytes): `relativeOffset u32 | position u32`. One entry is added per
//! `index.interval.bytes` of log; the entry's offset is the *last* offset of the batch that
//! starts at `position` (Kafka ≥ 3.x), so a lookup for offset `o` finds the last entry `<= o`
//! and scans forward from its position.

use super::{IndexEntry, IndexFile, floor_index};

/// An `.index` entry, with the offset made absolute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetPosition {
    /// Offset relative to the segment's base offset.
    pub relative_offset: u32,
    /// Byte position of the batch in the `.log` file.
    pub position: u32,
}

impl IndexEntry for OffsetPosition {
    const SIZE: usize = 8;

    fn decode(buf: &[u8]) -> Self {
        OffsetPosition {
            relative_offset: u32::from_be_bytes(buf[0..4].try_into().expect("4 bytes")),
            position: u32::from_be_bytes(buf[4..8].try_into().expect("4 bytes")),
        }
    }

    fn encode(&self, buf: &mut [u8]) {
        buf[0..4].copy_from_slice(&self.relative_offset.to_be_bytes());
        buf[4..8].copy_from_slice(&self.position.to_be_bytes());
    }

    fn relative_offset(&self) -> u32 {
        self.relative_offset
    }
}

/// The offset index of one segment.
pub type OffsetIndex = IndexFile<OffsetPosition>;

impl OffsetIndex {
    /// Position to start scanning from for `relative_offset`: that of the last entry at or
    /// before it, or 0.
    pub fn lookup(&self, relative_offset: u32) -> u32 {
        self.lookup_entry(relative_offset).map_or(0, |e| e.position)
    }

    /// The last entry at or before `relative_offset`, if any.
    pub fn lookup_entry(&self, relative_offset: u32) -> Option<OffsetPosition> {
        floor_index(
            self.entries(),
            |e| i64::from(e.relative_offset),
            i64::from(relative_offset),
        )
        .map(|i| self.entries()[i])
    }

    /// Drops entries for offsets `>= relative_offset` (truncation).
    pub fn truncate_to_offset(&mut self, relative_offset: u32) {
        let keep = self
            .entries()
            .partition_point(|e| e.relative_offset < relative_offset);
        self.truncate_entries(keep);
    }

    /// Whether the entries could describe a log of `log_size` bytes: offsets strictly
    /// increasing, positions increasing and inside the file.
    pub fn is_sane(&self, log_size: u64) -> bool {
        let entries = self.entries();
        entries
            .windows(2)
            .all(|w| w[0].relative_offset < w[1].relative_offset && w[0].position < w[1].position)
            && entries
                .last()
                .is_none_or(|e| u64::from(e.position) < log_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_floor_entry() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = OffsetIndex::create(dir.path().join("0.index"), 16).unwrap();
        assert_eq!(index.lookup(5), 0);
        index.push(OffsetPosition {
            relative_offset: 9,
            position: 4100,
        });
        index.push(OffsetPosition {
            relative_offset: 20,
            position: 8300,
        });
        assert_eq!(index.lookup(8), 0);
        assert_eq!(index.lookup(9), 4100);
        assert_eq!(index.lookup(19), 4100);
        assert_eq!(index.lookup(1000), 8300);
        assert!(index.is_sane(8301) && !index.is_sane(8300));
        index.truncate_to_offset(20);
        assert_eq!(index.entries().len(), 1);
    }

    #[test]
    fn preallocates_and_trims_like_kafka() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.index");
        let mut index = OffsetIndex::create(path.clone(), 1280).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 10240);
        index.push(OffsetPosition {
            relative_offset: 3,
            position: 77,
        });
        index.trim().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), [0, 0, 0, 3, 0, 0, 0, 77]);
        let loaded = OffsetIndex::load(path, 1280).unwrap();
        assert_eq!(
            loaded.entries(),
            &[OffsetPosition {
                relative_offset: 3,
                position: 77
            }]
        );
    }
}

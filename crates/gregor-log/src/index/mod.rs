//! Kafka's sparse segment indexes: `.index` (offset → file position) and `.timeindex`
//! (timestamp → offset).
//!
//! Both are arrays of fixed-size big-endian entries, preallocated to `segment.index.bytes` while
//! their segment is active and trimmed to their real size when it is rolled or closed, exactly as
//! Kafka lays them out. Gregor keeps the entries of a loaded index in memory (an index is at most
//! `segment.index.bytes`, 10 MiB) and writes the unwritten tail on flush, roll and close. Segments
//! load their indexes lazily, on first use, so opening a large log after a clean shutdown reads no
//! index at all.

mod offset_index;
mod time_index;
pub mod txn_index;

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub use offset_index::{OffsetIndex, OffsetPosition};
pub use time_index::{TimeIndex, TimestampOffset};

/// One fixed-size index entry.
pub trait IndexEntry: Copy + std::fmt::Debug + PartialEq {
    /// Encoded size in bytes.
    const SIZE: usize;
    /// Decodes an entry from exactly `SIZE` bytes.
    fn decode(buf: &[u8]) -> Self;
    /// Encodes the entry into exactly `SIZE` bytes.
    fn encode(&self, buf: &mut [u8]);
    /// Offset relative to the segment's base offset.
    fn relative_offset(&self) -> u32;
    /// Slots kept free for an entry that must always fit (the time index's final entry).
    const RESERVED_SLOTS: usize = 0;
}

/// An index file: entries in memory, the file on disk written up to `persisted` entries.
#[derive(Debug)]
pub struct IndexFile<E: IndexEntry> {
    path: PathBuf,
    entries: Vec<E>,
    /// Entries already written to the file.
    persisted: usize,
    max_entries: usize,
    file: Option<File>,
}

impl<E: IndexEntry> IndexFile<E> {
    /// Creates an empty index file, preallocated to hold `max_entries`.
    pub fn create(path: PathBuf, max_entries: usize) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        file.set_len((max_entries * E::SIZE) as u64)?;
        Ok(IndexFile {
            path,
            entries: Vec::new(),
            persisted: 0,
            max_entries,
            file: Some(file),
        })
    }

    /// An index about to be rebuilt from its log (crash recovery): its file is not read —
    /// a preallocated index is megabytes of entries that the rebuild would discard.
    pub fn for_rebuild(path: PathBuf, max_entries: usize) -> Self {
        IndexFile {
            path,
            entries: Vec::new(),
            persisted: 0,
            max_entries,
            file: None,
        }
    }

    /// Reads an existing index file. A preallocated tail of zeros is not trimmed here: the
    /// caller sanity-checks the entries and rebuilds the index if they do not describe its log.
    /// A missing file loads as empty (and will fail the caller's sanity check if the log is not).
    pub fn load(path: PathBuf, max_entries: usize) -> io::Result<Self> {
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let entries: Vec<E> = bytes.chunks_exact(E::SIZE).map(E::decode).collect();
        let persisted = entries.len();
        Ok(IndexFile {
            path,
            entries,
            persisted,
            max_entries,
            file: None,
        })
    }

    /// Whether the raw file length is a whole number of entries (a sanity check input).
    pub fn file_len_is_aligned(&self) -> io::Result<bool> {
        match fs::metadata(&self.path) {
            Ok(m) => Ok(m.len() % E::SIZE as u64 == 0),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// The file this index lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// All entries, in order.
    pub fn entries(&self) -> &[E] {
        &self.entries
    }

    /// The last entry, if any.
    pub fn last(&self) -> Option<E> {
        self.entries.last().copied()
    }

    /// True when no more regular entries fit in `segment.index.bytes`; a full index rolls
    /// the segment.
    pub fn is_full(&self) -> bool {
        self.entries.len() + E::RESERVED_SLOTS >= self.max_entries
    }

    /// Adds an entry at the end (in memory; written on the next flush).
    pub fn push(&mut self, entry: E) {
        self.entries.push(entry);
    }

    /// Drops every entry from `len` on.
    pub fn truncate_entries(&mut self, len: usize) {
        self.entries.truncate(len);
        self.persisted = self.persisted.min(len);
    }

    /// Replaces every entry (after a rebuild from the log).
    pub fn reset(&mut self, entries: Vec<E>) {
        self.entries = entries;
        self.persisted = 0;
    }

    fn file(&mut self) -> io::Result<&File> {
        if self.file.is_none() {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&self.path)?;
            self.file = Some(file);
        }
        Ok(self.file.as_ref().expect("just opened"))
    }

    /// Writes entries not yet on disk (no fsync).
    pub fn write_pending(&mut self) -> io::Result<()> {
        if self.persisted == self.entries.len() {
            return Ok(());
        }
        let mut buf = vec![0u8; (self.entries.len() - self.persisted) * E::SIZE];
        for (chunk, entry) in buf
            .chunks_exact_mut(E::SIZE)
            .zip(&self.entries[self.persisted..])
        {
            entry.encode(chunk);
        }
        let at = (self.persisted * E::SIZE) as u64;
        self.file()?.write_all_at(&buf, at)?;
        self.persisted = self.entries.len();
        Ok(())
    }

    /// Writes pending entries and makes the file exactly as long as its entries, as Kafka's
    /// `trimToValidSize` does when a segment stops being active.
    pub fn trim(&mut self) -> io::Result<()> {
        self.write_pending()?;
        let len = (self.entries.len() * E::SIZE) as u64;
        self.file()?.set_len(len)
    }

    /// Grows the file back to `segment.index.bytes` (an index becoming active again).
    pub fn preallocate(&mut self) -> io::Result<()> {
        let len = (self.max_entries * E::SIZE) as u64;
        self.write_pending()?;
        self.file()?.set_len(len)
    }

    /// Writes pending entries and fsyncs the file.
    pub fn sync(&mut self) -> io::Result<()> {
        self.write_pending()?;
        self.file()?.sync_all()
    }

    /// Renames the file (suffix changes during deletion and compaction swaps).
    pub fn rename(&mut self, to: PathBuf) -> io::Result<()> {
        match fs::rename(&self.path, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        self.path = to;
        Ok(())
    }
}

/// Index of the last entry `<= target` by `key`, for binary searches over sorted entries.
pub(crate) fn floor_index<E>(entries: &[E], key: impl Fn(&E) -> i64, target: i64) -> Option<usize> {
    let n = entries.partition_point(|e| key(e) <= target);
    n.checked_sub(1)
}

//! `LogSegment`: one `.log` file of record batches and its two indexes.
//!
//! A segment is append-only while active. Batches go to the end of the `.log` exactly as
//! given; every `index.interval.bytes` of log an offset index entry (the batch's last offset →
//! its position) and, if the largest timestamp grew, a time index entry are added, as Kafka's
//! `LogSegment.append` does. Indexes load lazily on first use and are checked for sanity; a
//! missing or damaged index is rebuilt from the log rather than trusted.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use gregor_protocol::batch::{BatchIter, RecordBatch, TimestampType};
use parking_lot::{MappedMutexGuard, Mutex, MutexGuard};

use crate::config::LogConfig;
use crate::error::{IoContext, Result};
use crate::index::txn_index::TXN_INDEX_SUFFIX;
use crate::index::{OffsetIndex, OffsetPosition, TimeIndex, TimestampOffset};
use crate::leader_epoch::EpochEntry;
use crate::names::{INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX, segment_file};
use crate::reader::{BatchPosition, BatchReader, FileSlice, Scan, read_header_at};

/// The index-related settings a segment needs, copied from the [`LogConfig`] it was made with.
#[derive(Debug, Clone, Copy)]
pub struct IndexSettings {
    /// `index.interval.bytes`.
    pub interval_bytes: u64,
    /// `segment.index.bytes` / 8.
    pub max_offset_entries: usize,
    /// `segment.index.bytes` / 12.
    pub max_time_entries: usize,
}

impl From<&LogConfig> for IndexSettings {
    fn from(config: &LogConfig) -> Self {
        IndexSettings {
            interval_bytes: config.index_interval_bytes,
            max_offset_entries: config.max_offset_index_entries(),
            max_time_entries: config.max_time_index_entries(),
        }
    }
}

/// What [`LogSegment::recover`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Bytes of torn or invalid data cut from the end.
    pub truncated_bytes: u64,
    /// Where each leader epoch seen in the kept batches starts, so the epoch cache can be
    /// rebuilt if its checkpoint missed an append (as Kafka's `LogSegment.recover`).
    pub leader_epochs: Vec<EpochEntry>,
}

/// Both indexes plus what is derived from them; loaded together, lazily.
#[derive(Debug)]
pub struct Indexes {
    /// The `.index`.
    pub offset: OffsetIndex,
    /// The `.timeindex`.
    pub time: TimeIndex,
    /// Largest timestamp in the segment and the last offset of the batch holding it.
    pub max_timestamp: Option<(i64, i64)>,
}

/// One segment of a partition log.
#[derive(Debug)]
pub struct LogSegment {
    base_offset: i64,
    dir: PathBuf,
    suffix: String,
    log: Arc<File>,
    size: u64,
    settings: IndexSettings,
    indexes: Mutex<Option<Indexes>>,
    bytes_since_last_index_entry: u64,
    /// Max timestamp of the first batch (`Some(None)`: segment empty), for `segment.ms`.
    rolling_timestamp: Option<Option<i64>>,
}

impl LogSegment {
    /// Creates a new, empty segment with preallocated indexes. `suffix` is `""`, or
    /// `.cleaned` for a segment the cleaner is writing.
    pub fn create(
        dir: &Path,
        base_offset: i64,
        settings: IndexSettings,
        suffix: &str,
    ) -> Result<LogSegment> {
        let log_path = segment_file(dir, base_offset, LOG_SUFFIX, suffix);
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)
            .at(&log_path)?;
        let offset_path = segment_file(dir, base_offset, INDEX_SUFFIX, suffix);
        let offset = OffsetIndex::create(offset_path.clone(), settings.max_offset_entries)
            .at(&offset_path)?;
        let time_path = segment_file(dir, base_offset, TIME_INDEX_SUFFIX, suffix);
        let time =
            TimeIndex::create(time_path.clone(), settings.max_time_entries).at(&time_path)?;
        let indexes = Indexes {
            offset,
            time,
            max_timestamp: None,
        };
        LogSegment::from_parts(dir, base_offset, suffix, settings, log, Some(indexes))
    }

    /// Opens an existing segment without reading its indexes.
    pub fn open(
        dir: &Path,
        base_offset: i64,
        settings: IndexSettings,
        suffix: &str,
    ) -> Result<LogSegment> {
        let log_path = segment_file(dir, base_offset, LOG_SUFFIX, suffix);
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log_path)
            .at(&log_path)?;
        LogSegment::from_parts(dir, base_offset, suffix, settings, log, None)
    }

    /// Assembles a segment around its open `.log`; `indexes` are loaded lazily if `None`.
    fn from_parts(
        dir: &Path,
        base_offset: i64,
        suffix: &str,
        settings: IndexSettings,
        log: File,
        indexes: Option<Indexes>,
    ) -> Result<LogSegment> {
        let log_path = segment_file(dir, base_offset, LOG_SUFFIX, suffix);
        let size = log.metadata().at(&log_path)?.len();
        Ok(LogSegment {
            base_offset,
            dir: dir.to_path_buf(),
            suffix: suffix.to_string(),
            log: Arc::new(log),
            size,
            settings,
            indexes: Mutex::new(indexes),
            bytes_since_last_index_entry: 0,
            // An empty segment has no first batch; otherwise it is read when first needed.
            rolling_timestamp: (size == 0).then_some(None),
        })
    }

    /// First offset this segment may hold (its name).
    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// Bytes in the `.log`.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The open `.log` file, shared with fetches and the group commit.
    pub fn log_file(&self) -> &Arc<File> {
        &self.log
    }

    /// Path of one of this segment's files.
    pub fn file_path(&self, extension: &str) -> PathBuf {
        segment_file(&self.dir, self.base_offset, extension, &self.suffix)
    }

    /// The lazily loaded indexes. Loading checks them against the log and rebuilds them by
    /// scanning batch headers if they are missing, misaligned or out of order.
    pub fn indexes(&self) -> Result<MappedMutexGuard<'_, Indexes>> {
        let mut guard = self.indexes.lock();
        if guard.is_none() {
            *guard = Some(self.load_indexes()?);
        }
        Ok(MutexGuard::map(guard, |i| {
            i.as_mut().expect("loaded above")
        }))
    }

    fn load_indexes(&self) -> Result<Indexes> {
        let offset_path = self.file_path(INDEX_SUFFIX);
        let time_path = self.file_path(TIME_INDEX_SUFFIX);
        let offset = OffsetIndex::load(offset_path.clone(), self.settings.max_offset_entries)
            .at(&offset_path)?;
        let time =
            TimeIndex::load(time_path.clone(), self.settings.max_time_entries).at(&time_path)?;
        let sane = offset.file_len_is_aligned().at(&offset_path)?
            && time.file_len_is_aligned().at(&time_path)?
            && offset.is_sane(self.size)
            && time.is_sane(u64::from(u32::MAX))
            && (self.size == 0
                || !offset.entries().is_empty()
                || self.size <= self.settings.interval_bytes * 2
                || self.settings.interval_bytes == 0)
            // A sealed, non-empty segment always ends its time index with its max timestamp.
            && (self.size == 0 || !time.entries().is_empty())
            && self.last_entries_match_log(&offset, &time)?;
        let mut indexes = Indexes {
            offset,
            time,
            max_timestamp: None,
        };
        if sane {
            indexes.max_timestamp = indexes
                .time
                .last()
                .map(|e| (e.timestamp, self.base_offset + i64::from(e.relative_offset)));
        } else {
            tracing::warn!(segment = %self.file_path(LOG_SUFFIX).display(), "index files are damaged or missing; rebuilding from the log");
            self.rebuild_into(&mut indexes, false)?;
        }
        Ok(indexes)
    }

    /// Spot-checks a loaded index against the log: the last offset entry must point at a batch
    /// ending at its offset, and the last time entry at a batch with its offset and timestamp.
    /// Damage that keeps entries in order is invisible to the structural checks; this catches
    /// it where it matters most (the end of the segment, the max timestamp retention uses).
    fn last_entries_match_log(&self, offset: &OffsetIndex, time: &TimeIndex) -> Result<bool> {
        let log_path = self.file_path(LOG_SUFFIX);
        if let Some(entry) = offset.last() {
            let header =
                read_header_at(&self.log, u64::from(entry.position), self.size).at(&log_path)?;
            if header.is_none_or(|b| {
                b.last_offset != self.base_offset + i64::from(entry.relative_offset)
            }) {
                return Ok(false);
            }
        }
        if let Some(entry) = time.last() {
            let target = self.base_offset + i64::from(entry.relative_offset);
            let start = u64::from(offset.lookup(entry.relative_offset));
            let found = self.scan_headers_from(start, |b| b.last_offset >= target)?;
            if found.is_none_or(|b| b.last_offset != target || b.max_timestamp != entry.timestamp) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// An index entry was found not to match the log: rebuild both indexes from the log and
    /// write them out.
    fn rebuild_damaged_indexes(&self) -> Result<()> {
        tracing::warn!(segment = %self.file_path(LOG_SUFFIX).display(), "index entry does not match the log; rebuilding indexes");
        let offset_path = self.file_path(INDEX_SUFFIX);
        let time_path = self.file_path(TIME_INDEX_SUFFIX);
        let mut indexes = self.indexes()?;
        self.rebuild_into(&mut indexes, false)?;
        indexes.offset.trim().at(&offset_path)?;
        indexes.time.trim().at(&time_path)
    }

    /// Recomputes both indexes by scanning the log. With `check_crc` every batch's CRC and
    /// offsets are validated and the first bad batch ends the scan; returns the position where
    /// valid data ends and where each leader epoch found in the batches starts.
    fn rebuild_into(
        &self,
        indexes: &mut Indexes,
        check_crc: bool,
    ) -> Result<(u64, Vec<EpochEntry>)> {
        let mut epochs: Vec<EpochEntry> = Vec::new();
        let log_path = self.file_path(LOG_SUFFIX);
        let mut offsets = Vec::new();
        let mut times: Vec<TimestampOffset> = Vec::new();
        let mut max_ts: Option<(i64, i64)> = None;
        let mut since_entry = 0u64;
        let mut next_expected = self.base_offset;
        let mut reader = BatchReader::new(&self.log, 0, self.size);
        let valid_end = loop {
            match reader.next_batch().at(&log_path)? {
                Scan::End => break self.size,
                Scan::Invalid(at) => break at,
                Scan::Batch(position, bytes) => {
                    let Ok(batch) = RecordBatch::parse(bytes) else {
                        break position;
                    };
                    if check_crc && batch.validate_stored().is_err() {
                        break position;
                    }
                    let rel = batch.last_offset() - self.base_offset;
                    if batch.base_offset() < next_expected
                        || !(0..=i64::from(u32::MAX)).contains(&rel)
                    {
                        break position;
                    }
                    next_expected = batch.next_offset();
                    let epoch = batch.partition_leader_epoch();
                    if epoch >= 0 && epochs.last().is_none_or(|e| epoch > e.epoch) {
                        epochs.push(EpochEntry {
                            epoch,
                            start_offset: batch.base_offset(),
                        });
                    }
                    if max_ts.is_none_or(|(ts, _)| batch.max_timestamp() > ts) {
                        max_ts = Some((batch.max_timestamp(), batch.last_offset()));
                    }
                    // Up to a full index, as appending writes it (a full index rolls).
                    if since_entry > self.settings.interval_bytes
                        && offsets.len() < self.settings.max_offset_entries
                    {
                        offsets.push(OffsetPosition {
                            relative_offset: rel as u32,
                            position: position as u32,
                        });
                        let (ts, off) = max_ts.expect("set above");
                        let entry = TimestampOffset {
                            timestamp: ts,
                            relative_offset: (off - self.base_offset) as u32,
                        };
                        if times.last().is_none_or(|l| entry.timestamp > l.timestamp) {
                            times.push(entry);
                        }
                        since_entry = 0;
                    }
                    since_entry += batch.size() as u64;
                }
            }
        };
        // As Kafka's `LogSegment.recover`: the last time index entry holds the segment's largest
        // timestamp, which is what a later lazy load takes as the segment's max timestamp.
        if let Some((ts, off)) = max_ts {
            if times.last().is_none_or(|l| ts > l.timestamp) {
                times.push(TimestampOffset {
                    timestamp: ts,
                    relative_offset: (off - self.base_offset) as u32,
                });
            }
        }
        indexes.offset.reset(offsets);
        indexes.time.reset(times);
        indexes.max_timestamp = max_ts;
        Ok((valid_end, epochs))
    }

    /// Crash recovery: validates every batch (CRC, offsets), rebuilds both indexes and cuts
    /// off whatever follows the last valid batch.
    pub fn recover(&mut self) -> Result<Recovery> {
        let mut guard = self.indexes.lock();
        let offset_path = self.file_path(INDEX_SUFFIX);
        let time_path = self.file_path(TIME_INDEX_SUFFIX);
        let mut indexes = match guard.take() {
            Some(i) => i,
            None => Indexes {
                offset: OffsetIndex::for_rebuild(
                    offset_path.clone(),
                    self.settings.max_offset_entries,
                ),
                time: TimeIndex::for_rebuild(time_path.clone(), self.settings.max_time_entries),
                max_timestamp: None,
            },
        };
        let (valid_end, leader_epochs) = self.rebuild_into(&mut indexes, true)?;
        indexes.offset.trim().at(&offset_path)?;
        indexes.time.trim().at(&time_path)?;
        *guard = Some(indexes);
        drop(guard);
        let truncated = self.size - valid_end;
        if truncated > 0 {
            let log_path = self.file_path(LOG_SUFFIX);
            self.log.set_len(valid_end).at(&log_path)?;
            self.size = valid_end;
        }
        self.rolling_timestamp = None;
        self.bytes_since_last_index_entry = 0;
        Ok(Recovery {
            truncated_bytes: truncated,
            leader_epochs,
        })
    }

    /// Appends already-validated batches whose offsets are final. `records` must hold whole
    /// batches only.
    pub fn append(&mut self, records: &[u8]) -> Result<()> {
        let log_path = self.file_path(LOG_SUFFIX);
        let position = self.size;
        self.log.write_all_at(records, position).at(&log_path)?;
        let mut since_entry = self.bytes_since_last_index_entry;
        let mut indexes = self.indexes()?;
        let mut at = position;
        let mut first_ts = None;
        for batch in BatchIter::new(records) {
            let batch = batch.expect("append() takes validated batches");
            if first_ts.is_none() {
                first_ts = Some(batch.max_timestamp());
            }
            if indexes
                .max_timestamp
                .is_none_or(|(ts, _)| batch.max_timestamp() > ts)
            {
                indexes.max_timestamp = Some((batch.max_timestamp(), batch.last_offset()));
            }
            if since_entry > self.settings.interval_bytes {
                let rel = (batch.last_offset() - self.base_offset) as u32;
                indexes.offset.push(OffsetPosition {
                    relative_offset: rel,
                    position: at as u32,
                });
                let (ts, off) = indexes.max_timestamp.expect("set above");
                let entry = TimestampOffset {
                    timestamp: ts,
                    relative_offset: (off - self.base_offset) as u32,
                };
                indexes.time.maybe_append(entry, false);
                since_entry = 0;
            }
            since_entry += batch.size() as u64;
            at += batch.size() as u64;
        }
        drop(indexes);
        self.bytes_since_last_index_entry = since_entry;
        if self.size == 0 {
            self.rolling_timestamp = Some(first_ts);
        }
        self.size += records.len() as u64;
        Ok(())
    }

    /// True if one more index entry would not fit (Kafka rolls on a full index).
    pub fn indexes_full(&self) -> Result<bool> {
        let indexes = self.indexes()?;
        Ok(indexes.offset.is_full() || indexes.time.is_full())
    }

    /// Timestamp `segment.ms` is measured from: the first batch's max timestamp, as Kafka's
    /// `rollingBasedTimestamp`; `None` for an empty segment.
    pub fn rolling_timestamp(&mut self) -> Result<Option<i64>> {
        if self.rolling_timestamp.is_none() {
            let log_path = self.file_path(LOG_SUFFIX);
            let first = read_header_at(&self.log, 0, self.size).at(&log_path)?;
            self.rolling_timestamp = Some(first.map(|b| b.max_timestamp));
        }
        Ok(self.rolling_timestamp.flatten())
    }

    /// The first batch whose last offset is `>= offset`, scanning headers from the index
    /// entry at or before it.
    pub fn translate_offset(&self, offset: i64) -> Result<Option<BatchPosition>> {
        let rel = (offset - self.base_offset).clamp(0, i64::from(u32::MAX)) as u32;
        let Some(entry) = self.indexes()?.offset.lookup_entry(rel) else {
            return self.scan_headers_from(0, |b| b.last_offset >= offset);
        };
        // The entry's batch must end exactly at the entry's offset; if not, the index is
        // damaged (and would silently send reads to the wrong batch): rebuild and retry.
        let expected = self.base_offset + i64::from(entry.relative_offset);
        let log_path = self.file_path(LOG_SUFFIX);
        match read_header_at(&self.log, u64::from(entry.position), self.size).at(&log_path)? {
            Some(batch) if batch.last_offset == expected => {
                self.scan_headers_from(u64::from(entry.position), |b| b.last_offset >= offset)
            }
            _ => {
                self.rebuild_damaged_indexes()?;
                let start = u64::from(self.indexes()?.offset.lookup(rel));
                self.scan_headers_from(start, |b| b.last_offset >= offset)
            }
        }
    }

    /// Scans batch headers from `position` and returns the first one matching `stop`.
    fn scan_headers_from(
        &self,
        mut position: u64,
        stop: impl Fn(&BatchPosition) -> bool,
    ) -> Result<Option<BatchPosition>> {
        let log_path = self.file_path(LOG_SUFFIX);
        while let Some(batch) = read_header_at(&self.log, position, self.size).at(&log_path)? {
            if stop(&batch) {
                return Ok(Some(batch));
            }
            position = batch.end();
        }
        Ok(None)
    }

    /// Whole batches from the one holding `start_offset`, at most `max_bytes` (but always the
    /// first batch when `min_one_batch`), ending before file position `max_position`.
    /// `None` when no batch at or after `start_offset` lies below `max_position`; an empty
    /// slice when the first batch is larger than `max_bytes` and `min_one_batch` is false.
    pub fn read(
        &self,
        start_offset: i64,
        max_bytes: usize,
        max_position: u64,
        min_one_batch: bool,
    ) -> Result<Option<FileSlice>> {
        let Some(first) = self.translate_offset(start_offset)? else {
            return Ok(None);
        };
        let limit = max_position.min(self.size);
        if first.end() > limit {
            return Ok(None);
        }
        if !min_one_batch && first.size > max_bytes as u64 {
            return Ok(Some(FileSlice {
                file: Arc::clone(&self.log),
                position: first.position,
                len: 0,
            }));
        }
        // Everything before an index entry's position is whole batches: jump to the last entry
        // inside the byte budget, then scan only the few headers after it.
        let budget_end = limit.min(first.position.saturating_add(max_bytes as u64));
        let mut end = first.end();
        {
            let indexes = self.indexes()?;
            let entries = indexes.offset.entries();
            let i = entries.partition_point(|e| u64::from(e.position) <= budget_end);
            if let Some(entry) = i.checked_sub(1).map(|i| entries[i]) {
                end = end.max(u64::from(entry.position));
            }
        }
        let log_path = self.file_path(LOG_SUFFIX);
        while let Some(next) = read_header_at(&self.log, end, limit).at(&log_path)? {
            if next.end() - first.position > max_bytes as u64 {
                break;
            }
            end = next.end();
        }
        Ok(Some(FileSlice {
            file: Arc::clone(&self.log),
            position: first.position,
            len: (end - first.position) as usize,
        }))
    }

    /// Offset after the last batch (the base offset for an empty segment).
    pub fn next_offset(&self) -> Result<i64> {
        let start = self
            .indexes()?
            .offset
            .last()
            .map_or(0, |e| u64::from(e.position));
        Ok(self
            .last_batch_from(start)?
            .map_or(self.base_offset, |b| b.last_offset + 1))
    }

    fn last_batch_from(&self, mut position: u64) -> Result<Option<BatchPosition>> {
        let log_path = self.file_path(LOG_SUFFIX);
        let mut last = None;
        while let Some(batch) = read_header_at(&self.log, position, self.size).at(&log_path)? {
            position = batch.end();
            last = Some(batch);
        }
        Ok(last)
    }
}

impl LogSegment {
    /// The first record with a timestamp `>= timestamp` and an offset `>= min_offset`:
    /// `(its timestamp, its offset)`. Uses the time index to skip older batches, then decodes
    /// the one batch that holds the answer (as Kafka's `findOffsetByTimestamp`).
    pub fn find_offset_by_timestamp(
        &self,
        timestamp: i64,
        min_offset: i64,
    ) -> Result<Option<(i64, i64)>> {
        let start_position = {
            let indexes = self.indexes()?;
            let from = indexes
                .time
                .lookup_before(timestamp)
                .map_or(self.base_offset, |e| {
                    self.base_offset + i64::from(e.relative_offset)
                });
            let rel =
                (from.max(min_offset) - self.base_offset).clamp(0, i64::from(u32::MAX)) as u32;
            u64::from(indexes.offset.lookup(rel))
        };
        // A batch whose max timestamp qualifies may hold the qualifying records only below
        // `min_offset`: then keep scanning (Kafka's `FileRecords.searchForTimestamp`).
        let mut position = start_position;
        while let Some(found) = self.scan_headers_from(position, |b| {
            b.max_timestamp >= timestamp && b.last_offset >= min_offset
        })? {
            let bytes = self.read_batch(&found)?;
            let batch = RecordBatch::parse(&bytes)?;
            if batch.attributes().timestamp_type() == TimestampType::LogAppendTime {
                return Ok(Some((
                    batch.max_timestamp(),
                    batch.base_offset().max(min_offset),
                )));
            }
            let base_ts = batch.base_timestamp();
            let hit = batch
                .records()?
                .iter()
                .map(|r| (r.timestamp(base_ts), r.offset(batch.base_offset())))
                .find(|&(ts, off)| ts >= timestamp && off >= min_offset);
            if hit.is_some() {
                return Ok(hit);
            }
            position = found.end();
        }
        Ok(None)
    }

    /// The record holding the segment's largest timestamp: `(timestamp, offset)`.
    pub fn max_timestamp_record(&self) -> Result<Option<(i64, i64)>> {
        let Some((ts, last_offset)) = self.indexes()?.max_timestamp else {
            return Ok(None);
        };
        let Some(found) = self.translate_offset(last_offset)? else {
            return Ok(None);
        };
        let bytes = self.read_batch(&found)?;
        let batch = RecordBatch::parse(&bytes)?;
        if batch.attributes().timestamp_type() == TimestampType::LogAppendTime {
            return Ok(Some((ts, batch.base_offset())));
        }
        let base_ts = batch.base_timestamp();
        Ok(batch
            .records()?
            .iter()
            .map(|r| (r.timestamp(base_ts), r.offset(batch.base_offset())))
            .find(|&(t, _)| t == ts)
            .or(Some((ts, last_offset))))
    }

    /// The bytes of one batch found by a header scan.
    pub fn read_batch(&self, batch: &BatchPosition) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; batch.size as usize];
        let log_path = self.file_path(LOG_SUFFIX);
        self.log
            .read_exact_at(&mut buf, batch.position)
            .at(&log_path)?;
        Ok(buf)
    }

    /// Removes every batch holding offsets `>= offset` (a batch straddling `offset` goes
    /// whole, as in Kafka). Returns the bytes removed.
    pub fn truncate_to(&mut self, offset: i64) -> Result<u64> {
        let Some(first_removed) = self.translate_offset(offset)? else {
            return Ok(0);
        };
        let log_path = self.file_path(LOG_SUFFIX);
        self.log.set_len(first_removed.position).at(&log_path)?;
        let removed = self.size - first_removed.position;
        self.size = first_removed.position;
        let mut indexes = self.indexes()?;
        self.rebuild_into(&mut indexes, false)?;
        drop(indexes);
        self.rolling_timestamp = None;
        self.bytes_since_last_index_entry = 0;
        Ok(removed)
    }

    /// Largest timestamp in the segment, or the file's modification time if it has none
    /// (what retention judges a segment by, as Kafka's `largestTimestamp`).
    pub fn largest_timestamp(&self) -> Result<i64> {
        if let Some((ts, _)) = self.indexes()?.max_timestamp {
            if ts >= 0 {
                return Ok(ts);
            }
        }
        let log_path = self.file_path(LOG_SUFFIX);
        let modified = self
            .log
            .metadata()
            .and_then(|m| m.modified())
            .at(&log_path)?;
        Ok(modified
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64))
    }

    /// The segment stops being active: add the final time index entry and trim both indexes
    /// to their real size (written, not yet fsynced).
    pub fn seal(&mut self) -> Result<()> {
        let base = self.base_offset;
        let offset_path = self.file_path(INDEX_SUFFIX);
        let time_path = self.file_path(TIME_INDEX_SUFFIX);
        let mut indexes = self.indexes()?;
        if let Some((ts, off)) = indexes.max_timestamp {
            indexes.time.maybe_append(
                TimestampOffset {
                    timestamp: ts,
                    relative_offset: (off - base) as u32,
                },
                true,
            );
        }
        indexes.offset.trim().at(&offset_path)?;
        indexes.time.trim().at(&time_path)?;
        Ok(())
    }

    /// The segment becomes the active one: its indexes grow back to `segment.index.bytes`.
    pub fn activate(&mut self) -> Result<()> {
        let offset_path = self.file_path(INDEX_SUFFIX);
        let time_path = self.file_path(TIME_INDEX_SUFFIX);
        let mut indexes = self.indexes()?;
        indexes.offset.preallocate().at(&offset_path)?;
        indexes.time.preallocate().at(&time_path)
    }

    /// fsyncs the `.log` and both index files (for a sealed segment or at close).
    pub fn sync_all(&self) -> Result<()> {
        let log_path = self.file_path(LOG_SUFFIX);
        self.log.sync_data().at(&log_path)?;
        let offset_path = self.file_path(INDEX_SUFFIX);
        let time_path = self.file_path(TIME_INDEX_SUFFIX);
        let mut indexes = self.indexes()?;
        indexes.offset.sync().at(&offset_path)?;
        indexes.time.sync().at(&time_path)?;
        drop(indexes);
        self.sync_txn_index()
    }

    /// Syncs the `.txnindex`, if the segment has one.
    pub fn sync_txn_index(&self) -> Result<()> {
        let path = self.file_path(TXN_INDEX_SUFFIX);
        match File::open(&path) {
            Ok(file) => file.sync_all().at(&path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).at(&path),
        }
    }

    /// Renames the segment's files to a new temporary suffix (`""`, `.deleted`,
    /// `.cleaned`, `.swap`). The `.log` goes last, so its name tells how far a swap got.
    pub fn change_suffix(&mut self, suffix: &str) -> Result<()> {
        let mut guard = self.indexes.lock();
        for (extension, index_loaded) in [(INDEX_SUFFIX, true), (TIME_INDEX_SUFFIX, false)] {
            let from = self.file_path(extension);
            let to = segment_file(&self.dir, self.base_offset, extension, suffix);
            match guard.as_mut() {
                Some(indexes) if index_loaded => indexes.offset.rename(to).at(&from)?,
                Some(indexes) => indexes.time.rename(to).at(&from)?,
                None => rename_if_exists(&from, &to).at(&from)?,
            }
        }
        drop(guard);
        let from = self.file_path(TXN_INDEX_SUFFIX);
        rename_if_exists(
            &from,
            &segment_file(&self.dir, self.base_offset, TXN_INDEX_SUFFIX, suffix),
        )
        .at(&from)?;
        let from = self.file_path(LOG_SUFFIX);
        rename_if_exists(
            &from,
            &segment_file(&self.dir, self.base_offset, LOG_SUFFIX, suffix),
        )
        .at(&from)?;
        self.suffix = suffix.to_string();
        Ok(())
    }

    /// Removes the segment's files for good.
    pub fn delete_files(&self) -> Result<()> {
        for extension in [
            LOG_SUFFIX,
            INDEX_SUFFIX,
            TIME_INDEX_SUFFIX,
            TXN_INDEX_SUFFIX,
        ] {
            let path = self.file_path(extension);
            match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e).at(&path),
                _ => {}
            }
        }
        Ok(())
    }
}

fn rename_if_exists(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

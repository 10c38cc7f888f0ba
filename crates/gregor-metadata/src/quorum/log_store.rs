//! The durable Raft log and vote ([`LogStore`]), implementing openraft's `RaftLogStorage`.
//!
//! Layout under the metadata directory:
//! - `raft-log.bin`: append-only records `[u32 BE length][u32 BE crc32c][JSON entry]`. An
//!   append is written and `fdatasync`ed before openraft's flush callback fires, so an entry
//!   openraft counts as persisted (and may acknowledge to the leader) is on disk. A torn or
//!   corrupt tail (crash mid-append) is cut off on open: it was never acknowledged.
//! - `vote.json`: the vote, replaced atomically and fsynced before `save_vote` returns.
//! - `purged.json`: the last purged log id (fsynced); purging then rewrites `raft-log.bin`
//!   without the purged prefix (tmp + fsync + rename), and entries at or below the purge point
//!   still found after a crash in between are skipped on open.
//! - `committed.json`: last known committed log id, a best-effort hint (not fsynced) that lets
//!   a restarted node re-apply its committed entries before hearing from a leader.
//!
//! The whole (snapshot-bounded) log is also kept in memory: the metadata log is small and
//! openraft reads recent entries constantly for replication. File I/O is synchronous inside the
//! async methods; openraft drives storage one call at a time, and each call is one small write
//! plus one fsync.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::ops::RangeBounds;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogState, RaftLogReader, StorageIOError, Vote};

use super::files::{read_json, sync_dir, write_atomic};
use super::types::{LogEntry, LogId, RaftNodeId, StorageError, TypeConfig};

/// Largest record accepted when reading the log back: anything bigger is corruption.
const MAX_RECORD: u32 = 256 * 1024 * 1024;
const LOG_FILE: &str = "raft-log.bin";
const VOTE_FILE: &str = "vote.json";
const PURGED_FILE: &str = "purged.json";
const COMMITTED_FILE: &str = "committed.json";

type Entries = Arc<RwLock<BTreeMap<u64, LogEntry>>>;

/// The Raft log and vote of this node, durable under the metadata directory.
pub struct LogStore {
    dir: PathBuf,
    file: File,
    file_len: u64,
    /// File position where the record of each in-memory entry starts.
    positions: BTreeMap<u64, u64>,
    entries: Entries,
    vote: Option<Vote<RaftNodeId>>,
    purged: Option<LogId>,
    committed: Option<LogId>,
}

/// A read-only view of the in-memory log, handed to openraft's replication tasks.
#[derive(Clone)]
pub struct LogReader {
    entries: Entries,
}

impl LogStore {
    /// Opens (or creates) the log in `dir`, cutting off a torn or corrupt tail.
    pub fn open(dir: &Path) -> io::Result<LogStore> {
        fs::create_dir_all(dir)?;
        let vote = read_json(&dir.join(VOTE_FILE))?;
        let purged: Option<LogId> = read_json(&dir.join(PURGED_FILE))?;
        let committed = read_json(&dir.join(COMMITTED_FILE)).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "ignoring unreadable committed.json (a hint only)");
            None
        });
        let path = dir.join(LOG_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let (records, good_len) = scan(&bytes);
        if good_len < bytes.len() as u64 {
            tracing::warn!(
                path = %path.display(),
                kept = good_len,
                dropped = bytes.len() as u64 - good_len,
                "truncating torn or corrupt tail of the metadata log"
            );
            file.set_len(good_len)?;
            file.sync_all()?;
        }
        let mut entries = BTreeMap::new();
        let mut positions = BTreeMap::new();
        let purged_index = purged.map(|p: LogId| p.index);
        for (pos, entry) in records {
            let index = entry.log_id.index;
            if purged_index.is_some_and(|p| index <= p) {
                continue;
            }
            positions.insert(index, pos);
            entries.insert(index, entry);
        }
        sync_dir(dir)?;
        Ok(LogStore {
            dir: dir.to_path_buf(),
            file,
            file_len: good_len,
            positions,
            entries: Arc::new(RwLock::new(entries)),
            vote,
            purged,
            committed,
        })
    }

    fn last_log_id(&self) -> Option<LogId> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .last_key_value()
            .map(|(_, e)| e.log_id)
            .or(self.purged)
    }

    fn append_sync(&mut self, entries: Vec<LogEntry>) -> io::Result<()> {
        let mut buf = Vec::new();
        let mut starts = Vec::with_capacity(entries.len());
        for entry in &entries {
            starts.push(self.file_len + buf.len() as u64);
            encode_record(entry, &mut buf)?;
        }
        self.file.write_all_at(&buf, self.file_len)?;
        self.file.sync_data()?;
        self.file_len += buf.len() as u64;
        let mut map = write_entries(&self.entries);
        for (entry, start) in entries.into_iter().zip(starts) {
            self.positions.insert(entry.log_id.index, start);
            map.insert(entry.log_id.index, entry);
        }
        Ok(())
    }

    fn truncate_sync(&mut self, index: u64) -> io::Result<()> {
        let Some(&pos) = self.positions.get(&index) else {
            return Ok(());
        };
        self.file.set_len(pos)?;
        self.file.sync_all()?;
        self.file_len = pos;
        self.positions.split_off(&index);
        write_entries(&self.entries).split_off(&index);
        Ok(())
    }

    fn purge_sync(&mut self, log_id: LogId) -> io::Result<()> {
        write_atomic(
            &self.dir.join(PURGED_FILE),
            &serde_json::to_vec(&log_id)?,
            true,
        )?;
        self.purged = Some(log_id);
        let kept = {
            let mut map = write_entries(&self.entries);
            let kept = map.split_off(&(log_id.index + 1));
            *map = kept.clone();
            kept
        };
        // Rewrite the file with only the kept entries.
        let mut buf = Vec::new();
        let mut positions = BTreeMap::new();
        for (index, entry) in &kept {
            positions.insert(*index, buf.len() as u64);
            encode_record(entry, &mut buf)?;
        }
        let path = self.dir.join(LOG_FILE);
        write_atomic(&path, &buf, true)?;
        self.file = OpenOptions::new().read(true).write(true).open(&path)?;
        self.file_len = buf.len() as u64;
        self.positions = positions;
        Ok(())
    }
}

fn write_entries(entries: &Entries) -> std::sync::RwLockWriteGuard<'_, BTreeMap<u64, LogEntry>> {
    entries.write().unwrap_or_else(|e| e.into_inner())
}

/// Appends one framed record for `entry` to `buf`.
fn encode_record(entry: &LogEntry, buf: &mut Vec<u8>) -> io::Result<()> {
    let payload = serde_json::to_vec(entry)?;
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|l| *l <= MAX_RECORD)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "log entry too large"))?;
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
    buf.extend_from_slice(&payload);
    Ok(())
}

/// Decodes records from the start of `bytes`, stopping at the first incomplete, corrupt or
/// out-of-sequence one: returns (position, entry) pairs and the length of the good prefix.
fn scan(bytes: &[u8]) -> (Vec<(u64, LogEntry)>, u64) {
    let mut out: Vec<(u64, LogEntry)> = Vec::new();
    let mut pos = 0usize;
    while bytes.len() - pos >= 8 {
        let len = u32::from_be_bytes([bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]]);
        let crc = u32::from_be_bytes([
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
            bytes[pos + 7],
        ]);
        let end = pos + 8 + len as usize;
        if len > MAX_RECORD || end > bytes.len() {
            break;
        }
        let payload = &bytes[pos + 8..end];
        if crc32c::crc32c(payload) != crc {
            break;
        }
        let Ok(entry) = serde_json::from_slice::<LogEntry>(payload) else {
            break;
        };
        if out
            .last()
            .is_some_and(|(_, prev)| prev.log_id.index + 1 != entry.log_id.index)
        {
            break;
        }
        out.push((pos as u64, entry));
        pos = end;
    }
    (out, pos as u64)
}

fn read_range<RB: RangeBounds<u64>>(entries: &Entries, range: RB) -> Vec<LogEntry> {
    let map = entries.read().unwrap_or_else(|e| e.into_inner());
    map.range(range).map(|(_, e)| e.clone()).collect()
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<LogEntry>, StorageError> {
        Ok(read_range(&self.entries, range))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<LogEntry>, StorageError> {
        Ok(read_range(&self.entries, range))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        Ok(LogState {
            last_purged_log_id: self.purged,
            last_log_id: self.last_log_id(),
        })
    }

    async fn get_log_reader(&mut self) -> LogReader {
        LogReader {
            entries: self.entries.clone(),
        }
    }

    async fn save_vote(&mut self, vote: &Vote<RaftNodeId>) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(vote).map_err(|e| StorageIOError::write_vote(&e))?;
        write_atomic(&self.dir.join(VOTE_FILE), &bytes, true)
            .map_err(|e| StorageIOError::write_vote(&e))?;
        self.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<RaftNodeId>>, StorageError> {
        Ok(self.vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.committed = committed;
        let bytes = serde_json::to_vec(&committed).map_err(|e| StorageIOError::write(&e))?;
        // A hint only: a lost or stale value just means re-applying later, so no fsync.
        if let Err(e) = write_atomic(&self.dir.join(COMMITTED_FILE), &bytes, false) {
            tracing::warn!(error = %e, "could not record the committed log id");
        }
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        // Never claim more than we hold: the hint may outlive a truncated tail.
        let last = self.last_log_id();
        Ok(match (self.committed, last) {
            (Some(c), Some(l)) if c.index <= l.index => Some(c),
            _ => None,
        })
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = LogEntry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<LogEntry> = entries.into_iter().collect();
        match self.append_sync(entries) {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "metadata log append failed");
                let err = StorageIOError::write_logs(&e);
                callback.log_io_completed(Err(e));
                Err(err.into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.truncate_sync(log_id.index).map_err(|e| {
            tracing::error!(error = %e, "metadata log truncate failed");
            StorageIOError::write_logs(&e).into()
        })
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.purge_sync(log_id).map_err(|e| {
            tracing::error!(error = %e, "metadata log purge failed");
            StorageIOError::write_logs(&e).into()
        })
    }
}

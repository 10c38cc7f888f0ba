//! `.snapshot` files: the producer state as of an offset, in Kafka's `ProducerSnapshot` v1
//! format, so a restart does not have to re-read the whole log and Kafka's tools can read them.
//!
//! Layout (big-endian): `version i16 (=1) | crc u32 | count i32 | entries`, each entry
//! `producerId i64 | epoch i16 | lastSequence i32 | lastOffset i64 | offsetDelta i32 |
//! timestamp i64 | coordinatorEpoch i32 | currentTxnFirstOffset i64`. The CRC-32C covers
//! everything after the CRC field. Only a producer's last batch is kept, as in Kafka: after a
//! restart a retry of an older in-flight batch is refused as out of order rather than answered
//! as a duplicate.

use std::collections::{BTreeSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{BatchMetadata, NO_SEQUENCE, ProducerStateEntry};
use crate::error::{IoContext, LogError, Result};
use crate::names::offset_file_stem;

/// Extension of producer snapshot files.
pub const SNAPSHOT_SUFFIX: &str = "snapshot";
const VERSION: i16 = 1;
const HEADER: usize = 2 + 4 + 4;
const ENTRY: usize = 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8;

/// Path of the snapshot taken at `offset`.
pub fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{}.{SNAPSHOT_SUFFIX}", offset_file_stem(offset)))
}

/// Offsets of the snapshots in `dir`.
pub fn list(dir: &Path) -> Result<BTreeSet<i64>> {
    let mut offsets = BTreeSet::new();
    for entry in fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        let Some(stem) = name
            .to_str()
            .and_then(|n| n.strip_suffix(&format!(".{SNAPSHOT_SUFFIX}")))
        else {
            continue;
        };
        if stem.len() == 20 {
            if let Ok(offset) = stem.parse() {
                offsets.insert(offset);
            }
        }
    }
    Ok(offsets)
}

/// Encodes the entries as a snapshot file's bytes.
pub fn encode<'a>(entries: impl Iterator<Item = &'a ProducerStateEntry>) -> Vec<u8> {
    let mut body = Vec::new();
    let mut count = 0i32;
    for e in entries {
        count += 1;
        let last = e.batches.back();
        body.extend_from_slice(&e.producer_id.to_be_bytes());
        body.extend_from_slice(&e.epoch.to_be_bytes());
        body.extend_from_slice(&last.map_or(NO_SEQUENCE, |b| b.last_seq).to_be_bytes());
        body.extend_from_slice(&last.map_or(-1i64, |b| b.last_offset).to_be_bytes());
        let delta = last.map_or(0, |b| b.last_seq.wrapping_sub(b.first_seq));
        body.extend_from_slice(&delta.to_be_bytes());
        body.extend_from_slice(&e.last_timestamp.to_be_bytes());
        body.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
        body.extend_from_slice(&e.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
    }
    let mut payload = count.to_be_bytes().to_vec();
    payload.extend_from_slice(&body);
    let mut out = VERSION.to_be_bytes().to_vec();
    out.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Decodes a snapshot file's bytes; `Err(reason)` if it is damaged.
pub fn decode(bytes: &[u8]) -> std::result::Result<Vec<ProducerStateEntry>, String> {
    if bytes.len() < HEADER {
        return Err(format!("{} bytes is too short", bytes.len()));
    }
    let version = i16::from_be_bytes([bytes[0], bytes[1]]);
    if version != VERSION {
        return Err(format!("unsupported version {version}"));
    }
    let crc = u32::from_be_bytes(bytes[2..6].try_into().expect("4"));
    if crc32c::crc32c(&bytes[6..]) != crc {
        return Err("CRC mismatch".into());
    }
    let count = i32::from_be_bytes(bytes[6..10].try_into().expect("4"));
    let body = &bytes[HEADER..];
    if count < 0 || body.len() != count as usize * ENTRY {
        return Err(format!("{count} entries in {} bytes", body.len()));
    }
    Ok(body.chunks_exact(ENTRY).map(decode_entry).collect())
}

fn decode_entry(b: &[u8]) -> ProducerStateEntry {
    let i64_at = |at: usize| i64::from_be_bytes(b[at..at + 8].try_into().expect("8"));
    let i32_at = |at: usize| i32::from_be_bytes(b[at..at + 4].try_into().expect("4"));
    let last_seq = i32_at(10);
    let last_offset = i64_at(14);
    let delta = i32_at(22);
    let timestamp = i64_at(26);
    let txn_first = i64_at(38);
    let mut batches = VecDeque::new();
    if last_offset >= 0 {
        batches.push_back(BatchMetadata {
            first_seq: if last_seq < 0 {
                last_seq
            } else {
                last_seq.wrapping_sub(delta).max(0)
            },
            last_seq,
            first_offset: last_offset - i64::from(delta.max(0)),
            last_offset,
            timestamp,
        });
    }
    ProducerStateEntry {
        producer_id: i64_at(0),
        epoch: i16::from_be_bytes([b[8], b[9]]),
        batches,
        coordinator_epoch: i32_at(34),
        current_txn_first_offset: (txn_first >= 0).then_some(txn_first),
        last_timestamp: timestamp,
    }
}

/// Writes the snapshot at `offset` durably (temporary file, fsync, rename).
pub fn write<'a>(
    dir: &Path,
    offset: i64,
    entries: impl Iterator<Item = &'a ProducerStateEntry>,
) -> Result<()> {
    let path = snapshot_path(dir, offset);
    let tmp = path.with_extension(format!("{SNAPSHOT_SUFFIX}.tmp"));
    let bytes = encode(entries);
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&tmp)
        .at(&tmp)?;
    file.write_all(&bytes).at(&tmp)?;
    file.sync_all().at(&tmp)?;
    fs::rename(&tmp, &path).at(&path)?;
    File::open(dir).and_then(|d| d.sync_all()).at(dir)?;
    Ok(())
}

/// Reads the snapshot at `offset`.
pub fn read(dir: &Path, offset: i64) -> Result<Vec<ProducerStateEntry>> {
    let path = snapshot_path(dir, offset);
    let bytes = fs::read(&path).at(&path)?;
    decode(&bytes).map_err(|reason| LogError::CorruptSnapshot { path, reason })
}

/// Deletes the snapshot at `offset`, if present.
pub fn delete(dir: &Path, offset: i64) -> Result<()> {
    let path = snapshot_path(dir, offset);
    match fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).at(&path),
        _ => Ok(()),
    }
}

//! `.txnindex`: the aborted transactions whose abort marker lies in a segment, so a
//! `read_committed` fetch can tell consumers which records to drop without reading them.
//!
//! Kafka's layout: 34-byte big-endian entries `version i16 (=0) | producerId i64 |
//! firstOffset i64 | lastOffset i64 | lastStableOffset i64`, appended as aborts are written.
//! The file only exists once a segment has an abort. A torn trailing entry is ignored: the
//! abort it described is re-derived from the log when the producer state is rebuilt.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use crate::producer_state::AbortedTxn;

/// Extension of a segment's transaction index.
pub const TXN_INDEX_SUFFIX: &str = "txnindex";
const VERSION: i16 = 0;
const ENTRY_SIZE: usize = 2 + 8 * 4;

fn encode(txn: &AbortedTxn) -> [u8; ENTRY_SIZE] {
    let mut out = [0u8; ENTRY_SIZE];
    out[0..2].copy_from_slice(&VERSION.to_be_bytes());
    out[2..10].copy_from_slice(&txn.producer_id.to_be_bytes());
    out[10..18].copy_from_slice(&txn.first_offset.to_be_bytes());
    out[18..26].copy_from_slice(&txn.last_offset.to_be_bytes());
    out[26..34].copy_from_slice(&txn.last_stable_offset.to_be_bytes());
    out
}

fn decode(b: &[u8]) -> Option<AbortedTxn> {
    let i64_at = |at: usize| i64::from_be_bytes(b[at..at + 8].try_into().expect("8"));
    (i16::from_be_bytes([b[0], b[1]]) == VERSION).then(|| AbortedTxn {
        producer_id: i64_at(2),
        first_offset: i64_at(10),
        last_offset: i64_at(18),
        last_stable_offset: i64_at(26),
    })
}

/// Appends entries to the index at `path` (created if absent).
pub fn append(path: &Path, txns: &[AbortedTxn]) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(txns.len() * ENTRY_SIZE);
    for txn in txns {
        bytes.extend_from_slice(&encode(txn));
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(&bytes)
}

/// The entries of the index at `path` (none if it does not exist).
pub fn read(path: &Path) -> io::Result<Vec<AbortedTxn>> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(bytes.chunks_exact(ENTRY_SIZE).filter_map(decode).collect())
}

/// Replaces the index at `path` with `txns` (removing the file if there are none).
pub fn rewrite(path: &Path, txns: &[AbortedTxn]) -> io::Result<()> {
    if txns.is_empty() {
        return match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    let tmp = path.with_extension(format!("{TXN_INDEX_SUFFIX}.tmp"));
    let _ = fs::remove_file(&tmp);
    append(&tmp, txns)?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_torn_tail_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.txnindex");
        assert!(read(&path).unwrap().is_empty());
        let a = AbortedTxn {
            producer_id: 7,
            first_offset: 3,
            last_offset: 9,
            last_stable_offset: 10,
        };
        let b = AbortedTxn {
            producer_id: 8,
            first_offset: 5,
            last_offset: 12,
            last_stable_offset: 13,
        };
        append(&path, &[a]).unwrap();
        append(&path, &[b]).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), 68);
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&[0, 0, 1])
            .unwrap();
        assert_eq!(read(&path).unwrap(), vec![a, b]);
        rewrite(&path, &[b]).unwrap();
        assert_eq!(read(&path).unwrap(), vec![b]);
        rewrite(&path, &[]).unwrap();
        assert!(!path.exists());
    }
}

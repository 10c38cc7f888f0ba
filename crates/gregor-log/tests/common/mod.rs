//! Helpers shared by the compaction test files.

use std::collections::BTreeMap;

use gregor_log::Log;
use gregor_protocol::batch::BatchIter;

/// A record as the tests see it: UTF-8 key and value (`None` for a tombstone).
pub type KeyValue = (String, Option<String>);

/// Every record readable in the log, by offset, checking each batch's CRC on the way.
pub fn contents(log: &Log) -> BTreeMap<i64, KeyValue> {
    let mut out = BTreeMap::new();
    let mut offset = log.log_start_offset();
    while let Some(slice) = log.read(offset, 1 << 20, None, true).unwrap() {
        let bytes = slice.read_to_vec().unwrap();
        for batch in BatchIter::new(&bytes) {
            let batch = batch.unwrap();
            batch.validate_stored().unwrap();
            for r in batch.records().unwrap() {
                let key = String::from_utf8(r.key.clone().unwrap().to_vec()).unwrap();
                let value = r
                    .value
                    .clone()
                    .map(|v| String::from_utf8(v.to_vec()).unwrap());
                out.insert(r.offset(batch.base_offset()), (key, value));
            }
            offset = batch.next_offset();
        }
    }
    out
}

//! Property test of compaction against a model: random keyed appends (with tombstones and
//! every codec), rolls, cleaning passes at random times and reopens. After every pass the log
//! must hold, below the pass's end, exactly the latest record of each key (tombstones until
//! their horizon), every surviving record unchanged at its original offset, and everything
//! from the end of the pass on untouched.

use std::collections::BTreeMap;

mod common;

use common::contents;
use gregor_log::{CleanerProgress, LoadOptions, Log, LogCleaner, LogConfig, TopicPartition};
use gregor_protocol::batch::{Compression, RecordBatchBuilder};
use proptest::prelude::*;

const DELETE_RETENTION_MS: i64 = 1000;

#[derive(Debug, Clone)]
enum Op {
    /// Records as (key index, value or tombstone), with one codec.
    Append(Vec<(u8, Option<u16>)>, u8),
    Roll,
    /// Clean after advancing the clock by this much.
    Clean(i64),
    Reopen(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (prop::collection::vec((0u8..6, prop::option::weighted(0.85, any::<u16>())), 1..6), 0u8..5)
            .prop_map(|(records, codec)| Op::Append(records, codec)),
        2 => Just(Op::Roll),
        3 => (0i64..1500).prop_map(Op::Clean),
        1 => any::<bool>().prop_map(Op::Reopen),
    ]
}

use common::KeyValue as Record;

fn config() -> LogConfig {
    LogConfig::from_pairs([
        ("cleanup.policy", "compact"),
        ("segment.bytes", "600"),
        ("index.interval.bytes", "64"),
        ("min.cleanable.dirty.ratio", "0.0"),
        ("delete.retention.ms", &DELETE_RETENTION_MS.to_string()),
        ("file.delete.delay.ms", "0"),
    ])
    .unwrap()
}

fn open(dir: &std::path::Path, clean: bool) -> Log {
    let options = LoadOptions {
        had_clean_shutdown: clean,
        ..LoadOptions::new(0)
    };
    Log::open(
        dir.to_path_buf(),
        TopicPartition::new("m", 0),
        config(),
        options,
    )
    .unwrap()
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("m-0");
    let mut log = open(&dir, false);
    // Everything ever appended, and when each tombstone was first kept by a pass.
    let mut appended: BTreeMap<i64, Record> = BTreeMap::new();
    let mut tombstone_kept_at: BTreeMap<i64, i64> = BTreeMap::new();
    let mut progress = CleanerProgress::default();
    let mut now = 0i64;
    for op in ops {
        match op {
            Op::Append(records, codec) => {
                let codec = Compression::ALL[codec as usize];
                let mut builder = RecordBatchBuilder::new(0, codec);
                let records: Vec<Record> = records
                    .iter()
                    .map(|(k, v)| (format!("key-{k}"), v.map(|v| format!("value-{v}"))))
                    .collect();
                for (i, (k, v)) in records.iter().enumerate() {
                    builder.append(
                        i as i64,
                        now,
                        Some(k.as_bytes()),
                        v.as_deref().map(str::as_bytes),
                        &[],
                    );
                }
                let info = log
                    .append_as_leader(&mut builder.build().unwrap(), 0, now)
                    .unwrap();
                for (i, record) in records.into_iter().enumerate() {
                    appended.insert(info.first_offset + i as i64, record);
                }
            }
            Op::Roll => log.force_roll().unwrap(),
            Op::Reopen(clean) => {
                if clean {
                    log.close(now).unwrap();
                }
                let before = contents(&log);
                drop(log);
                log = open(&dir, clean);
                prop_assert_eq!(contents(&log), before, "reopen changed the log");
            }
            Op::Clean(advance) => {
                now += advance;
                let before = contents(&log);
                let Some(stats) = LogCleaner.clean(&log, progress, now).unwrap() else {
                    continue;
                };
                let end = stats.next_dirty_offset;
                let after = contents(&log);
                // From the end of the pass on: untouched.
                prop_assert_eq!(
                    after.range(end..).collect::<Vec<_>>(),
                    before.range(end..).collect::<Vec<_>>()
                );
                // Below it: the latest record of each key among everything appended below `end`,
                // unless it is a tombstone whose horizon has passed.
                let mut latest: BTreeMap<&str, i64> = BTreeMap::new();
                for (offset, (key, _)) in appended.range(..end) {
                    latest.insert(key, *offset);
                }
                let mut expected = BTreeMap::new();
                for (_, offset) in latest {
                    let record = appended[&offset].clone();
                    if record.1.is_none() {
                        // The first pass that keeps a tombstone stamps its batch's horizon
                        // (KIP-534); a pass at or after the horizon drops it.
                        let kept_at = *tombstone_kept_at.entry(offset).or_insert(now);
                        if now >= kept_at + DELETE_RETENTION_MS {
                            continue;
                        }
                    }
                    expected.insert(offset, record);
                }
                let cleaned: BTreeMap<i64, Record> =
                    after.range(..end).map(|(o, r)| (*o, r.clone())).collect();
                prop_assert_eq!(
                    &cleaned,
                    &expected,
                    "after a pass ending at {} at time {}",
                    end,
                    now
                );
                progress = CleanerProgress {
                    first_dirty_offset: end,
                    earliest_delete_horizon: stats.earliest_delete_horizon,
                };
            }
        }
        prop_assert!(log.log_end_offset() == appended.keys().next_back().map_or(0, |o| o + 1));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn compaction_matches_the_model(ops in prop::collection::vec(op(), 1..50)) {
        run(ops)?;
    }
}

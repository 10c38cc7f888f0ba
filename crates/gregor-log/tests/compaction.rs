//! Log compaction through `LogCleaner`: latest value per key, tombstones and their delete
//! horizon, lag and dirty-ratio gates, batch metadata, and crash-safe swaps.

use std::collections::BTreeMap;

mod common;

use common::contents;
use gregor_log::{CleanerProgress, LoadOptions, Log, LogCleaner, LogConfig, TopicPartition};
use gregor_protocol::batch::{Compression, RecordBatch, RecordBatchBuilder};

const DAY: i64 = 24 * 60 * 60 * 1000;

fn config(extra: &[(&str, &str)]) -> LogConfig {
    let mut pairs = vec![
        ("cleanup.policy", "compact"),
        ("segment.bytes", "1500"),
        ("index.interval.bytes", "100"),
        ("min.cleanable.dirty.ratio", "0.01"),
        ("file.delete.delay.ms", "0"),
    ];
    pairs.extend_from_slice(extra);
    LogConfig::from_pairs(pairs).unwrap()
}

/// One batch of `(key, value)` records (value `None` = tombstone).
fn batch(records: &[(&str, Option<&str>)], timestamp: i64, compression: Compression) -> Vec<u8> {
    let mut builder = RecordBatchBuilder::new(0, compression);
    for (i, (key, value)) in records.iter().enumerate() {
        builder.append(
            i as i64,
            timestamp,
            Some(key.as_bytes()),
            value.map(str::as_bytes),
            &[],
        );
    }
    builder.build().unwrap()
}

fn open(dir: &std::path::Path, config: LogConfig) -> Log {
    Log::open(
        dir.join("c-0"),
        TopicPartition::new("c", 0),
        config,
        LoadOptions::new(0),
    )
    .unwrap()
}

#[test]
fn keeps_the_latest_value_of_every_key_and_preserves_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), config(&[]));
    let mut latest = BTreeMap::new();
    for round in 0..30 {
        for key in 0..5 {
            let (k, v) = (format!("key{key}"), format!("value{round}-{key}"));
            let codec = [Compression::None, Compression::Gzip, Compression::Lz4][round % 3];
            let info = log
                .append_as_leader(&mut batch(&[(&k, Some(&v))], 1000, codec), 0, 1000)
                .unwrap();
            latest.insert(k, (info.first_offset, v));
        }
    }
    log.force_roll().unwrap();
    let before = log.size_in_bytes();
    let stats = LogCleaner
        .clean(&log, CleanerProgress::default(), 2000)
        .unwrap()
        .expect("dirty log is cleaned");
    assert_eq!(stats.next_dirty_offset, 150);
    assert_eq!(stats.records_removed, 145);
    assert!(
        log.size_in_bytes() < before / 5,
        "{} -> {}",
        before,
        log.size_in_bytes()
    );
    let after = contents(&log);
    let expected: BTreeMap<i64, (String, Option<String>)> = latest
        .iter()
        .map(|(k, (o, v))| (*o, (k.clone(), Some(v.clone()))))
        .collect();
    assert_eq!(after, expected);
    assert_eq!(log.log_end_offset(), 150);
    // Nothing dirty is left: a second pass does nothing.
    let progress = CleanerProgress {
        first_dirty_offset: stats.next_dirty_offset,
        earliest_delete_horizon: None,
    };
    assert!(LogCleaner.clean(&log, progress, 3000).unwrap().is_none());
    // The swapped-in segments survive a reopen, clean or not.
    log.close(3000).unwrap();
    drop(log);
    let reopened = open(dir.path(), config(&[]));
    assert_eq!(contents(&reopened), expected);
    assert_eq!(reopened.log_end_offset(), 150);
}

#[test]
fn tombstones_live_for_delete_retention_ms_then_go() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(
        dir.path(),
        config(&[("delete.retention.ms", &DAY.to_string())]),
    );
    log.append_as_leader(
        &mut batch(&[("a", Some("1")), ("b", Some("1"))], 0, Compression::None),
        0,
        0,
    )
    .unwrap();
    log.append_as_leader(&mut batch(&[("a", None)], 0, Compression::Snappy), 0, 0)
        .unwrap();
    log.force_roll().unwrap();
    let now = 10_000;
    let stats = LogCleaner
        .clean(&log, CleanerProgress::default(), now)
        .unwrap()
        .unwrap();
    assert_eq!(stats.earliest_delete_horizon, Some(now + DAY));
    let after = contents(&log);
    assert_eq!(
        after.get(&2),
        Some(&("a".to_string(), None)),
        "tombstone kept: {after:?}"
    );
    assert!(!after.contains_key(&0));
    // The kept tombstone's batch carries the horizon (KIP-534).
    let slice = log
        .read(2, 1 << 20, None, true)
        .unwrap()
        .unwrap()
        .read_to_vec()
        .unwrap();
    let stored = RecordBatch::parse(&slice).unwrap();
    assert_eq!(stored.delete_horizon(), Some(now + DAY));
    assert_eq!(
        stored.records().unwrap()[0].timestamp(stored.base_timestamp()),
        0,
        "record timestamp preserved"
    );
    let progress = CleanerProgress {
        first_dirty_offset: stats.next_dirty_offset,
        earliest_delete_horizon: stats.earliest_delete_horizon,
    };
    // Before the horizon nothing is due.
    assert!(
        LogCleaner
            .clean(&log, progress, now + DAY - 1)
            .unwrap()
            .is_none()
    );
    let stats = LogCleaner
        .clean(&log, progress, now + DAY)
        .unwrap()
        .unwrap();
    assert_eq!(stats.tombstones_removed, 1);
    assert_eq!(stats.earliest_delete_horizon, None);
    let after = contents(&log);
    assert_eq!(
        after.into_iter().collect::<Vec<_>>(),
        vec![(1, ("b".to_string(), Some("1".to_string())))]
    );
}

#[test]
fn honours_min_compaction_lag_and_dirty_ratio() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(
        dir.path(),
        config(&[
            ("min.compaction.lag.ms", "1000"),
            ("min.cleanable.dirty.ratio", "0.5"),
        ]),
    );
    for ts in [100, 200] {
        for _ in 0..20 {
            log.append_as_leader(
                &mut batch(&[("k", Some("v"))], ts, Compression::None),
                0,
                ts,
            )
            .unwrap();
        }
        log.force_roll().unwrap();
    }
    // At 1150 the first segment (max ts 100) is old enough, the second (200) is not.
    let stats = LogCleaner
        .clean(&log, CleanerProgress::default(), 1150)
        .unwrap()
        .unwrap();
    assert_eq!(stats.next_dirty_offset, 20);
    let kept: Vec<i64> = contents(&log).keys().copied().collect();
    assert_eq!(
        kept.len(),
        21,
        "last record of segment one plus all of segment two: {kept:?}"
    );
    assert!(kept.contains(&19));
    // Now everything is old enough, but only the second segment (half the bytes) is dirty
    // and the clean one is tiny, so the ratio is high: it runs.
    let progress = CleanerProgress {
        first_dirty_offset: 20,
        earliest_delete_horizon: None,
    };
    let stats = LogCleaner.clean(&log, progress, 5000).unwrap().unwrap();
    assert!(stats.dirty_ratio > 0.5);
    assert_eq!(contents(&log).keys().copied().collect::<Vec<_>>(), vec![39]);
    // With a ratio of 1.0 required and a clean section present, nothing runs.
    log.update_config(config(&[("min.cleanable.dirty.ratio", "1.0")]));
    for _ in 0..3 {
        log.append_as_leader(
            &mut batch(&[("k", Some("v"))], 300, Compression::None),
            0,
            300,
        )
        .unwrap();
    }
    log.force_roll().unwrap();
    let progress = CleanerProgress {
        first_dirty_offset: 40,
        earliest_delete_horizon: None,
    };
    assert!(LogCleaner.clean(&log, progress, 5000).unwrap().is_none());
}

#[test]
fn preserves_batch_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), config(&[]));
    let mut b = RecordBatchBuilder::new(0, Compression::Zstd).producer(4242, 3, 17);
    b.append(0, 50, Some(b"x"), Some(b"old"), &[]);
    b.append(1, 51, Some(b"y"), Some(b"keep"), &[]);
    b.append(2, 52, Some(b"z"), Some(b"old"), &[]);
    log.append_as_leader(&mut b.build().unwrap(), 5, 60)
        .unwrap();
    log.append_as_leader(
        &mut batch(
            &[("x", Some("new")), ("z", Some("new"))],
            70,
            Compression::None,
        ),
        5,
        70,
    )
    .unwrap();
    log.force_roll().unwrap();
    LogCleaner
        .clean(&log, CleanerProgress::default(), 100)
        .unwrap()
        .unwrap();
    let bytes = log
        .read(0, 1 << 20, None, true)
        .unwrap()
        .unwrap()
        .read_to_vec()
        .unwrap();
    let first = RecordBatch::parse(&bytes).unwrap();
    assert_eq!(
        (first.base_offset(), first.last_offset_delta()),
        (0, 2),
        "offset range kept"
    );
    assert_eq!(
        (
            first.producer_id(),
            first.producer_epoch(),
            first.base_sequence()
        ),
        (4242, 3, 17)
    );
    assert_eq!(first.partition_leader_epoch(), 5);
    assert_eq!(first.compression().unwrap(), Compression::Zstd);
    let records = first.records().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].offset(0), 1);
    assert_eq!(records[0].timestamp(first.base_timestamp()), 51);
}

#[test]
fn interrupted_swaps_are_finished_or_discarded_on_open() {
    // Clean a copy of a log, then plant its output in the original as a crash would leave it.
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("orig");
    let log = open(&original, config(&[]));
    for round in 0..20 {
        let v = format!("v{round}");
        log.append_as_leader(
            &mut batch(&[("k1", Some(&v)), ("k2", Some(&v))], 10, Compression::None),
            0,
            10,
        )
        .unwrap();
    }
    log.force_roll().unwrap();
    log.close(20).unwrap();
    let before = contents(&log);
    drop(log);
    let copy = dir.path().join("copy");
    copy_dir(&original.join("c-0"), &copy.join("c-0"));
    // One group: the cleaner writes a single segment replacing every inactive one.
    let cleaned = open(&copy, config(&[("segment.bytes", "1000000")]));
    LogCleaner
        .clean(&cleaned, CleanerProgress::default(), 100)
        .unwrap()
        .unwrap();
    let expected = contents(&cleaned);
    cleaned.close(200).unwrap();
    assert_ne!(expected, before);

    // Crash after the rename to .swap: the swap wins.
    let crashed = dir.path().join("crashed");
    copy_dir(&original.join("c-0"), &crashed.join("c-0"));
    for ext in ["log", "index", "timeindex"] {
        std::fs::copy(
            copy.join("c-0").join(format!("00000000000000000000.{ext}")),
            crashed
                .join("c-0")
                .join(format!("00000000000000000000.{ext}.swap")),
        )
        .unwrap();
    }
    std::fs::write(
        crashed.join("c-0/00000000000000000000.log.cleaned"),
        b"half-written",
    )
    .unwrap();
    let recovered = Log::open(
        crashed.join("c-0"),
        TopicPartition::new("c", 0),
        config(&[]),
        LoadOptions {
            had_clean_shutdown: true,
            ..LoadOptions::new(0)
        },
    )
    .unwrap();
    assert_eq!(contents(&recovered), expected);
    let names: Vec<String> = std::fs::read_dir(crashed.join("c-0"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.ends_with(".swap") && !n.ends_with(".cleaned")),
        "{names:?}"
    );

    // Crash before the .log was renamed to .swap: the originals stay.
    let early = dir.path().join("early");
    copy_dir(&original.join("c-0"), &early.join("c-0"));
    std::fs::copy(
        copy.join("c-0/00000000000000000000.index"),
        early.join("c-0/00000000000000000000.index.swap"),
    )
    .unwrap();
    std::fs::copy(
        copy.join("c-0/00000000000000000000.log"),
        early.join("c-0/00000000000000000000.log.cleaned"),
    )
    .unwrap();
    let untouched = Log::open(
        early.join("c-0"),
        TopicPartition::new("c", 0),
        config(&[]),
        LoadOptions {
            had_clean_shutdown: true,
            ..LoadOptions::new(0)
        },
    )
    .unwrap();
    assert_eq!(contents(&untouched), before);
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn compacted_topics_reject_keyless_records() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), config(&[]));
    let mut b = RecordBatchBuilder::new(0, Compression::Gzip);
    b.append(0, 1, None, Some(b"no key"), &[]);
    let err = log
        .append_as_leader(&mut b.build().unwrap(), 0, 1)
        .unwrap_err();
    assert_eq!(err.error_code().name(), "INVALID_RECORD");
    assert_eq!(log.log_end_offset(), 0);
}

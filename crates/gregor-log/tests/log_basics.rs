//! Append, read, roll and reopen a log through its public API.

use gregor_log::{LoadOptions, Log, LogConfig, TopicPartition};
use gregor_protocol::batch::{BatchIter, Compression, RecordBatchBuilder};

fn batch(records: usize, value_len: usize, timestamp: i64) -> Vec<u8> {
    let mut builder = RecordBatchBuilder::new(0, Compression::None);
    for i in 0..records {
        let key = format!("k{i}");
        builder.append(
            i as i64,
            timestamp,
            Some(key.as_bytes()),
            Some(&vec![b'v'; value_len]),
            &[],
        );
    }
    builder.build().unwrap()
}

fn small_config() -> LogConfig {
    LogConfig::from_pairs([
        ("segment.bytes", "2000"),
        ("index.interval.bytes", "200"),
        ("segment.index.bytes", "1200"),
    ])
    .unwrap()
}

#[test]
fn append_read_roll_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let tp = TopicPartition::new("t", 0);
    let log = Log::open(
        path.clone(),
        tp.clone(),
        small_config(),
        LoadOptions::new(0),
    )
    .unwrap();
    let mut expected = Vec::new();
    for i in 0..40 {
        let mut b = batch(3, 50, 1000 + i);
        let info = log.append_as_leader(&mut b, 1, 5000).unwrap();
        assert_eq!(info.first_offset, i * 3);
        assert_eq!(info.last_offset, i * 3 + 2);
        log.flush_if_required(&info, 5000).unwrap();
        expected.push(b);
    }
    assert_eq!(log.log_end_offset(), 120);
    assert_eq!(log.durable_offset(), 120);
    assert!(
        log.segment_base_offsets().len() > 3,
        "{:?}",
        log.segment_base_offsets()
    );
    for start in [0, 1, 2, 3, 50, 119] {
        let slice = log.read(start, 10, None, true).unwrap().unwrap();
        let bytes = slice.read_to_vec().unwrap();
        assert_eq!(bytes, expected[(start / 3) as usize], "start {start}");
    }
    assert!(log.read(120, 1000, None, true).unwrap().is_none());
    assert!(log.read(121, 1000, None, true).is_err());
    let all = log
        .read(0, 1 << 20, None, true)
        .unwrap()
        .unwrap()
        .read_to_vec()
        .unwrap();
    assert!(BatchIter::new(&all).count() >= 5);
    assert_eq!(log.offset_for_timestamp(1010).unwrap(), Some((1010, 30)));
    assert_eq!(log.max_timestamp_offset().unwrap(), Some((1039, 117)));
    log.close(6000).unwrap();
    drop(log);
    for clean in [true, false] {
        let options = LoadOptions {
            recovery_point: 0,
            log_start_offset: 0,
            had_clean_shutdown: clean,
            now_ms: 0,
        };
        let log = Log::open(path.clone(), tp.clone(), small_config(), options).unwrap();
        assert_eq!(log.log_end_offset(), 120);
        assert_eq!(log.offset_for_timestamp(1020).unwrap(), Some((1020, 60)));
        for start in [0, 7, 100] {
            let bytes = log
                .read(start, 10, None, true)
                .unwrap()
                .unwrap()
                .read_to_vec()
                .unwrap();
            assert_eq!(bytes, expected[(start / 3) as usize]);
        }
        assert_eq!(log.end_offset_for_epoch(1), (1, 120));
        log.close(7000).unwrap();
    }
}

/// Opening after a clean shutdown must not read inactive segments (Kafka loads indexes
/// lazily), so that a 10 GiB log opens at once. Proof without timing: ten sparse 1 GiB
/// segments full of zeros — which any scan would reject and truncate — survive the open
/// untouched, while the active segment is read correctly.
#[test]
fn clean_open_does_not_scan_inactive_segments() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big-0");
    let tp = TopicPartition::new("big", 0);
    const GIB: u64 = 1 << 30;
    for i in 0..10u64 {
        let base = i * 1_000_000;
        let log = std::fs::File::create(path_for(&path, base, "log")).unwrap();
        log.set_len(GIB).unwrap();
        std::fs::write(path_for(&path, base, "index"), []).unwrap();
        std::fs::write(path_for(&path, base, "timeindex"), []).unwrap();
    }
    let active_base: i64 = 10_000_000;
    std::fs::write(path_for(&path, active_base as u64, "log"), []).unwrap();
    {
        let log = Log::open(
            path.clone(),
            tp.clone(),
            LogConfig::default(),
            LoadOptions {
                had_clean_shutdown: true,
                ..LoadOptions::new(0)
            },
        )
        .unwrap();
        let mut b = batch(2, 10, 5);
        log.append_as_leader(&mut b, 0, 5).unwrap();
        log.close(5).unwrap();
    }
    let options = LoadOptions {
        recovery_point: active_base + 2,
        log_start_offset: 0,
        had_clean_shutdown: true,
        now_ms: 0,
    };
    let log = Log::open(path.clone(), tp, LogConfig::default(), options).unwrap();
    assert_eq!(log.log_end_offset(), active_base + 2);
    assert_eq!(
        log.size_in_bytes(),
        10 * GIB
            + std::fs::metadata(path_for(&path, active_base as u64, "log"))
                .unwrap()
                .len()
    );
    let slice = log.read(active_base, 1000, None, true).unwrap().unwrap();
    assert_eq!(BatchIter::new(&slice.read_to_vec().unwrap()).count(), 1);
}

fn path_for(dir: &std::path::Path, base: u64, ext: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    dir.join(format!("{base:020}.{ext}"))
}

/// A follower copies a leader's batches as they are: offsets, epochs and bytes preserved, the
/// epoch cache follows the batches, and a batch below the log end is refused.
#[test]
fn follower_append_keeps_leader_offsets_and_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let leader = Log::open(
        dir.path().join("l-0"),
        TopicPartition::new("l", 0),
        small_config(),
        LoadOptions::new(0),
    )
    .unwrap();
    for (i, epoch) in [1, 1, 3].into_iter().enumerate() {
        leader
            .append_as_leader(&mut batch(2, 20, i as i64), epoch, 0)
            .unwrap();
    }
    let copied = leader
        .read(0, 1 << 20, None, true)
        .unwrap()
        .unwrap()
        .read_to_vec()
        .unwrap();
    let follower = Log::open(
        dir.path().join("f-0"),
        TopicPartition::new("f", 0),
        small_config(),
        LoadOptions::new(0),
    )
    .unwrap();
    let info = follower.append_as_follower(&copied).unwrap();
    assert_eq!((info.first_offset, info.last_offset), (0, 5));
    assert_eq!(
        follower
            .read(0, 1 << 20, None, true)
            .unwrap()
            .unwrap()
            .read_to_vec()
            .unwrap(),
        copied
    );
    assert_eq!(follower.end_offset_for_epoch(1), (1, 4));
    assert_eq!(follower.latest_epoch(), Some(3));
    let err = follower.append_as_follower(&copied).unwrap_err();
    assert_eq!(err.error_code().name(), "INVALID_RECORD");
    assert_eq!(follower.log_end_offset(), 6);
}

/// A replica that led an epoch without writing in it, then follows the new leader: truncating
/// at its log end must still forget that epoch, or every fetch finds a divergence there again.
#[test]
fn truncating_at_the_log_end_forgets_an_empty_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(
        dir.path().join("t-0"),
        TopicPartition::new("t", 0),
        small_config(),
        LoadOptions::new(0),
    )
    .unwrap();
    log.append_as_leader(&mut batch(3, 10, 0), 0, 0).unwrap();
    log.assign_epoch_start_offset(1, 3).unwrap();
    assert_eq!(log.latest_epoch(), Some(1));
    assert_eq!(log.truncate_to(3, 0).unwrap(), 3);
    assert_eq!(log.latest_epoch(), Some(0));
    assert_eq!(log.end_offset_for_epoch(0), (0, 3));
}

//! Deterministic regression tests for bugs the model-based property test (`model.rs`) found
//! in the storage engine; each reproduces the minimal failing input.

use gregor_log::{LoadOptions, Log, LogConfig, TopicPartition};
use gregor_protocol::batch::{Compression, RecordBatchBuilder};

fn scratch_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn topic_partition() -> TopicPartition {
    TopicPartition::new("model", 0)
}

// ---------------------------------------------------------------------------------------------
// Deterministic regressions for bugs the model found
// ---------------------------------------------------------------------------------------------

fn batch_with_stamps(stamps: &[i64]) -> Vec<u8> {
    let mut builder = RecordBatchBuilder::new(0, Compression::None);
    for (i, ts) in stamps.iter().enumerate() {
        builder.append(i as i64, *ts, None, Some(b"v"), &[]);
    }
    builder.build().unwrap()
}

/// The first batch (from the time index's starting point) whose max timestamp reaches the
/// target may hold the matching records only below the log start; the search must go on to
/// the next batches of the same segment (Kafka's `FileRecords.searchForTimestamp`), not give
/// up on the segment.
#[test]
fn offset_for_timestamp_looks_past_a_batch_matching_only_below_log_start() {
    let dir = scratch_dir();
    let config = LogConfig::from_pairs([("retention.ms", "-1")]).unwrap();
    let log = Log::open(
        dir.path().join("t-0"),
        topic_partition(),
        config,
        LoadOptions::new(0),
    )
    .unwrap();
    log.append_as_leader(&mut batch_with_stamps(&[2000, 100, 100, 100, 100]), 0, 0)
        .unwrap();
    log.append_as_leader(&mut batch_with_stamps(&[1500]), 0, 0)
        .unwrap();
    assert_eq!(log.offset_for_timestamp(1000).unwrap(), Some((2000, 0)));
    log.delete_records_before(2, 0).unwrap();
    assert_eq!(log.offset_for_timestamp(1000).unwrap(), Some((1500, 5)));
}

/// Truncating inside a batch that also holds the log start removes the whole batch, so the
/// log end falls below the log start; the log start must follow it down.
#[test]
fn truncation_inside_the_batch_holding_the_log_start_moves_the_log_start_down() {
    let dir = scratch_dir();
    let log = Log::open(
        dir.path().join("t-0"),
        topic_partition(),
        LogConfig::default(),
        LoadOptions::new(0),
    )
    .unwrap();
    log.append_as_leader(&mut batch_with_stamps(&[1, 2, 3, 4]), 0, 0)
        .unwrap();
    log.append_as_leader(&mut batch_with_stamps(&[5, 6, 7]), 0, 0)
        .unwrap();
    log.delete_records_before(1, 0).unwrap();
    assert_eq!(log.truncate_to(2, 0).unwrap(), 0);
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.log_start_offset(), 0);
    assert!(log.read(0, 1000, None, true).unwrap().is_none());
    let mut batch = batch_with_stamps(&[8]);
    let info = log.append_as_leader(&mut batch, 0, 0).unwrap();
    assert_eq!(info.first_offset, 0);
    let read = log.read(0, 1000, None, true).unwrap().unwrap();
    assert_eq!(read.read_to_vec().unwrap(), batch);
}

/// Recovery rebuilds a segment's time index; its last entry must hold the segment's largest
/// timestamp (Kafka's `LogSegment.recover` appends it), because a later open that loads the
/// segment lazily takes that entry as the segment's max timestamp and skips the segment in
/// timestamp lookups when it is too small.
#[test]
fn recovered_segment_keeps_its_max_timestamp_across_a_lazy_reopen() {
    let dir = scratch_dir();
    let path = dir.path().join("t-0");
    let config =
        LogConfig::from_pairs([("index.interval.bytes", "100"), ("retention.ms", "-1")]).unwrap();
    let open = |recovery_point, clean| {
        let options = LoadOptions {
            recovery_point,
            log_start_offset: 0,
            had_clean_shutdown: clean,
            now_ms: 0,
        };
        Log::open(path.clone(), topic_partition(), config.clone(), options).unwrap()
    };
    let log = open(0, false);
    // Batches of 69, 77, 77 and 69 bytes: only the third is indexed (max so far 150), so the
    // largest timestamp, 500, comes after the last regular time index entry.
    for stamps in [&[100][..], &[100, 100], &[150, 100], &[500]] {
        log.append_as_leader(&mut batch_with_stamps(stamps), 0, 0)
            .unwrap();
    }
    log.force_roll().unwrap();
    log.append_as_leader(&mut batch_with_stamps(&[900]), 0, 0)
        .unwrap();
    assert_eq!(log.offset_for_timestamp(400).unwrap(), Some((500, 5)));
    log.close(0).unwrap();
    drop(log);
    // Full recovery rebuilds every index; then a clean open loads the first segment lazily.
    let log = open(0, false);
    assert_eq!(log.offset_for_timestamp(400).unwrap(), Some((500, 5)));
    log.close(0).unwrap();
    drop(log);
    let log = open(7, true);
    assert_eq!(log.offset_for_timestamp(400).unwrap(), Some((500, 5)));
    assert_eq!(log.max_timestamp_offset().unwrap(), Some((900, 6)));
}

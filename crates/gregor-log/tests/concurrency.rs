//! Flush policies (`flush.messages`, `flush.ms`, group commit) and readers running beside a
//! writer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use gregor_log::{LoadOptions, Log, LogConfig, TopicPartition};
use gregor_protocol::batch::{BatchIter, Compression, RecordBatchBuilder};

fn batch(records: usize, tag: u8) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new(0, Compression::None);
    for i in 0..records {
        b.append(i as i64, 1, Some(&[tag]), Some(&[tag; 64]), &[]);
    }
    b.build().unwrap()
}

fn open(dir: &std::path::Path, config: LogConfig) -> Arc<Log> {
    Arc::new(
        Log::open(
            dir.join("f-0"),
            TopicPartition::new("f", 0),
            config,
            LoadOptions::new(0),
        )
        .unwrap(),
    )
}

#[test]
fn flush_messages_and_flush_ms_decide_when_appends_are_synced() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(
        dir.path(),
        LogConfig::from_pairs([("flush.messages", "5"), ("flush.ms", "1000")]).unwrap(),
    );
    let mut durable = Vec::new();
    for _ in 0..4 {
        let info = log.append_as_leader(&mut batch(2, 1), 0, 0).unwrap();
        log.flush_if_required(&info, 0).unwrap();
        durable.push(log.durable_offset());
    }
    // Two records per append: the third append leaves 6 >= 5 unflushed and syncs everything.
    assert_eq!(durable, vec![0, 0, 6, 6]);
    log.flush_if_due(999).unwrap();
    assert_eq!(log.durable_offset(), 6, "flush.ms not reached");
    log.flush_if_due(1000).unwrap();
    assert_eq!(log.durable_offset(), 8);
    // The default (flush.messages = 1) syncs every acknowledged append.
    let strict = open(&dir.path().join("strict"), LogConfig::default());
    let info = strict.append_as_leader(&mut batch(1, 1), 0, 0).unwrap();
    strict.flush_if_required(&info, 0).unwrap();
    assert_eq!(strict.durable_offset(), 1);
}

#[test]
fn concurrent_appenders_share_fsyncs_and_readers_see_whole_batches() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(
        dir.path(),
        LogConfig::from_pairs([("segment.bytes", "20000"), ("index.interval.bytes", "512")])
            .unwrap(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (log, stop) = (Arc::clone(&log), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut reads = 0;
                while !stop.load(Ordering::Relaxed) {
                    let end = log.log_end_offset();
                    let mut offset = log.log_start_offset();
                    while offset < end {
                        let slice = log
                            .read(offset, 4096, Some(end), true)
                            .unwrap()
                            .expect("data below the end");
                        let bytes = slice.read_to_vec().unwrap();
                        for batch in BatchIter::new(&bytes) {
                            let batch = batch.expect("whole batches only");
                            batch.validate_stored().unwrap();
                            assert!(batch.last_offset() >= offset);
                            offset = batch.next_offset();
                        }
                        reads += 1;
                    }
                }
                reads
            })
        })
        .collect();
    let writers: Vec<_> = (0..4u8)
        .map(|tag| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let info = log.append_as_leader(&mut batch(3, tag), 0, 0).unwrap();
                    log.flush_if_required(&info, 0).unwrap();
                    assert!(log.durable_offset() > info.last_offset);
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    assert_eq!(log.log_end_offset(), 600);
    assert!(log.segment_base_offsets().len() > 2);
}

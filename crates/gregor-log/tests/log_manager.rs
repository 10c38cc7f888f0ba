//! `LogManager`: log directories, checkpoints, the clean-shutdown marker, deletion, and the
//! periodic passes.

use std::fs;

use gregor_log::{LogConfig, LogManager, TopicPartition};
use gregor_protocol::batch::{Compression, RecordBatchBuilder};

fn batch(n: usize) -> Vec<u8> {
    let mut b = RecordBatchBuilder::new(0, Compression::None);
    for i in 0..n {
        b.append(i as i64, 1_000, Some(b"k"), Some(&[7u8; 100]), &[]);
    }
    b.build().unwrap()
}

#[test]
fn shutdown_writes_checkpoints_and_marker_and_reopen_skips_recovery() {
    let root = tempfile::tempdir().unwrap();
    let dirs = vec![root.path().join("d1"), root.path().join("d2")];
    let manager = LogManager::open(dirs.clone(), |_| LogConfig::default(), 0).unwrap();
    let tps: Vec<TopicPartition> = (0..4).map(|p| TopicPartition::new("orders", p)).collect();
    for tp in &tps {
        let log = manager
            .get_or_create_log(tp, LogConfig::default(), 0)
            .unwrap();
        let info = log.append_as_leader(&mut batch(3), 0, 0).unwrap();
        log.flush_if_required(&info, 0).unwrap();
    }
    // Logs are spread over both directories.
    for dir in &dirs {
        assert_eq!(
            fs::read_dir(dir)
                .unwrap()
                .filter(|e| e.as_ref().unwrap().path().is_dir())
                .count(),
            2
        );
    }
    manager
        .get_log(&tps[0])
        .unwrap()
        .delete_records_before(1, 0)
        .unwrap();
    manager.shutdown(0).unwrap();
    for dir in &dirs {
        assert!(dir.join(".kafka_cleanshutdown").exists());
        let recovery = fs::read_to_string(dir.join("recovery-point-offset-checkpoint")).unwrap();
        let lines: Vec<&str> = recovery.lines().collect();
        assert_eq!(&lines[..2], ["0", "2"]);
        assert!(
            lines[2..]
                .iter()
                .all(|l| l.starts_with("orders ") && l.ends_with(" 3")),
            "{recovery}"
        );
        assert!(dir.join("log-start-offset-checkpoint").exists());
    }
    let starts: String = dirs
        .iter()
        .map(|d| fs::read_to_string(d.join("log-start-offset-checkpoint")).unwrap())
        .collect();
    assert!(starts.contains("orders 0 1\n"), "{starts}");
    drop(manager);

    let manager = LogManager::open(dirs.clone(), |_| LogConfig::default(), 0).unwrap();
    for dir in &dirs {
        assert!(
            !dir.join(".kafka_cleanshutdown").exists(),
            "marker is consumed at startup"
        );
    }
    for tp in &tps {
        let log = manager.get_log(tp).expect("log reloaded");
        assert_eq!(log.log_end_offset(), 3);
    }
    assert_eq!(manager.get_log(&tps[0]).unwrap().log_start_offset(), 1);
    assert!(manager.delete_log(&tps[1]).unwrap());
    assert!(manager.get_log(&tps[1]).is_none());
    let leftovers: Vec<_> = dirs
        .iter()
        .flat_map(|d| fs::read_dir(d).unwrap())
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with("orders-1"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // No shutdown this time: the next open recovers and still finds every flushed record.
    let log = manager.get_log(&tps[2]).unwrap();
    let info = log.append_as_leader(&mut batch(2), 0, 0).unwrap();
    log.flush_if_required(&info, 0).unwrap();
    drop(log);
    drop(manager);
    let manager = LogManager::open(dirs, |_| LogConfig::default(), 0).unwrap();
    assert_eq!(manager.get_log(&tps[2]).unwrap().log_end_offset(), 5);
    assert_eq!(manager.all_logs().len(), 3);
}

#[test]
fn retention_pass_deletes_by_time_and_size_after_the_delay() {
    let root = tempfile::tempdir().unwrap();
    let manager =
        LogManager::open(vec![root.path().to_path_buf()], |_| LogConfig::default(), 0).unwrap();
    let config = LogConfig::from_pairs([
        ("segment.bytes", "1000"),
        ("retention.ms", "10000"),
        ("file.delete.delay.ms", "500"),
    ])
    .unwrap();
    let tp = TopicPartition::new("events", 0);
    let log = manager.get_or_create_log(&tp, config.clone(), 0).unwrap();
    for ts in 0..20 {
        let mut b = RecordBatchBuilder::new(0, Compression::None);
        b.append(0, ts * 1000, Some(b"k"), Some(&[1u8; 300]), &[]);
        log.append_as_leader(&mut b.build().unwrap(), 0, ts * 1000)
            .unwrap();
    }
    let segments = log.segment_base_offsets();
    assert!(segments.len() >= 5, "{segments:?}");
    // At t=20.5s, records with timestamps up to 10.5s are past retention.
    assert!(manager.run_retention(20_500) > 0);
    let start = log.log_start_offset();
    assert!(start > 0 && start <= 11, "log start {start}");
    assert!(log.read(start - 1, 100, None, true).is_err());
    let deleted: Vec<_> = fs::read_dir(log.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".deleted"))
        .collect();
    assert!(
        !deleted.is_empty(),
        "files linger as .deleted for file.delete.delay.ms"
    );
    manager.run_retention(21_100);
    let remaining: Vec<_> = fs::read_dir(log.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        deleted.iter().all(|d| !remaining.contains(d)),
        "{remaining:?}"
    );
    // Size: keep at most ~2 segments' worth.
    let by_size = LogConfig {
        retention_ms: -1,
        retention_bytes: 2000,
        ..config
    };
    log.update_config(by_size);
    manager.run_retention(21_200);
    assert!(
        log.size_in_bytes() <= 2000 + 1000,
        "{}",
        log.size_in_bytes()
    );
    assert_eq!(log.log_end_offset(), 20);
    // Everything expired, including the active segment: Kafka rolls and deletes it too,
    // keeping the log end offset.
    log.update_config(LogConfig {
        retention_ms: 0,
        file_delete_delay_ms: 0,
        ..LogConfig::default()
    });
    manager.run_retention(100_000);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (20, 20));
    assert!(log.read(20, 100, None, true).unwrap().is_none());
}

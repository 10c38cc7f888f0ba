//! Crash safety of the storage engine.
//!
//! [`kill_and_recover`] runs appenders in a child process (this test binary, re-executed to run
//! only [`crash_child`]), SIGKILLs it at random moments, and after every kill recovers the log
//! and checks that every append the child saw made durable is there byte for byte, that the
//! files hold nothing but valid batches with contiguous offsets, and that the next child run
//! continues at the recovered log end.
//!
//! `corruption::corruption_keeps_a_valid_prefix` (in `crash/corruption.rs`) damages a closed
//! log on purpose (torn tails, overwritten bytes, damaged or missing indexes) and checks that
//! opening it keeps exactly the batches before the first damaged one, and that reads,
//! timestamp lookups and appends still work.
//!
//! Both are deterministic for a seed (`GREGOR_CRASH_SEED`, printed on failure) except for the
//! moments of the kills. `GREGOR_SOAK=1` runs many more rounds.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gregor_log::{LoadOptions, Log, LogConfig, TopicPartition};
use gregor_protocol::batch::{
    BatchIter, Compression, RecordBatch, RecordBatchBuilder, RecordBatchMut, RecordHeader,
};

#[path = "crash/corruption.rs"]
mod corruption;

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

/// xorshift64* with a splitmix64-scrambled seed: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// FNV-1a, 64 bits: the content hash the child reports for each durable append.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

fn base_seed() -> u64 {
    std::env::var("GREGOR_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x6752_6567_6f72)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn tp() -> TopicPartition {
    TopicPartition::new("crash", 0)
}

const CODECS: [Compression; 5] = Compression::ALL;

/// A value that is either incompressible or highly repetitive.
fn value(rng: &mut Rng, len: usize) -> Vec<u8> {
    if rng.one_in(2) {
        rng.bytes(len)
    } else {
        let fill = b'a' + rng.below(26) as u8;
        (0..len)
            .map(|i| if i % 17 == 0 { b'-' } else { fill })
            .collect()
    }
}

fn set_len(path: &Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

/// Opens `dir` as after a crash (or a clean shutdown), failing the test with `ctx` on error.
fn open(dir: &Path, config: LogConfig, recovery_point: i64, clean: bool, ctx: &str) -> Log {
    let options = LoadOptions {
        recovery_point,
        log_start_offset: 0,
        had_clean_shutdown: clean,
        now_ms: now_ms(),
    };
    Log::open(dir.to_path_buf(), tp(), config, options)
        .unwrap_or_else(|e| panic!("{ctx}: opening the log failed: {e}"))
}

/// Reads every `.log` file of `dir` directly (not through `Log`) and checks that each is a
/// sequence of whole batches with valid CRCs, nothing after the last one, named by the base
/// offset of its first batch, with offsets contiguous from `start` across all segments.
/// Returns the batches in order and the number of segments.
fn scan_segment_files(dir: &Path, start: i64, ctx: &str) -> (Vec<Vec<u8>>, usize) {
    let mut logs: Vec<(i64, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .map(|p| {
            let stem = p.file_stem().unwrap().to_str().unwrap();
            (stem.parse().expect("segment file named by offset"), p)
        })
        .collect();
    logs.sort();
    assert!(!logs.is_empty(), "{ctx}: no segment left");
    let mut batches = Vec::new();
    let mut expected = start;
    for (i, (base, path)) in logs.iter().enumerate() {
        let bytes = std::fs::read(path).unwrap();
        let last_segment = i + 1 == logs.len();
        assert!(
            !bytes.is_empty() || last_segment,
            "{ctx}: empty segment {base} is not the last one"
        );
        assert_eq!(
            *base, expected,
            "{ctx}: segment {base} should start at offset {expected}"
        );
        let mut iter = BatchIter::new(&bytes);
        for batch in iter.by_ref() {
            let batch = batch
                .unwrap_or_else(|e| panic!("{ctx}: segment {base} holds an unparsable batch: {e}"));
            batch
                .validate_stored()
                .unwrap_or_else(|e| panic!("{ctx}: segment {base}: invalid batch: {e}"));
            assert_eq!(
                batch.base_offset(),
                expected,
                "{ctx}: segment {base}: offsets not contiguous"
            );
            expected = batch.next_offset();
            batches.push(batch.as_bytes().to_vec());
        }
        assert_eq!(
            iter.position(),
            bytes.len(),
            "{ctx}: segment {base} has bytes after its last batch"
        );
    }
    (batches, logs.len())
}

/// Reads the whole log through `Log::read`, checking that it returns whole, valid batches with
/// contiguous offsets up to the log end and nothing at the log end.
fn read_all(log: &Log, ctx: &str) -> Vec<Vec<u8>> {
    let leo = log.log_end_offset();
    let mut offset = log.log_start_offset();
    let mut batches = Vec::new();
    while offset < leo {
        let slice = log
            .read(offset, 256 * 1024, None, true)
            .unwrap_or_else(|e| panic!("{ctx}: read at {offset} failed: {e}"))
            .unwrap_or_else(|| panic!("{ctx}: nothing at {offset} below the log end {leo}"));
        let bytes = slice.read_to_vec().unwrap();
        assert_eq!(bytes.len(), slice.len, "{ctx}: short read at {offset}");
        let mut iter = BatchIter::new(&bytes);
        for batch in iter.by_ref() {
            let batch = batch.unwrap_or_else(|e| panic!("{ctx}: read at {offset}: {e}"));
            batch.validate_stored().unwrap();
            assert_eq!(batch.base_offset(), offset, "{ctx}: read returned a gap");
            offset = batch.next_offset();
            batches.push(batch.as_bytes().to_vec());
        }
        assert_eq!(iter.position(), bytes.len(), "{ctx}: read split a batch");
    }
    assert_eq!(offset, leo, "{ctx}: last batch does not end at the log end");
    assert!(log.read(leo, 1024, None, true).unwrap().is_none());
    assert!(log.read(leo + 1, 1024, None, true).is_err());
    batches
}

/// A point read at `offset` must return exactly `batch`.
fn check_point_read(log: &Log, offset: i64, batch: &[u8], ctx: &str) {
    let got = log
        .read(offset, 1, None, true)
        .unwrap_or_else(|e| panic!("{ctx}: read at {offset} failed: {e}"))
        .unwrap_or_else(|| panic!("{ctx}: read at {offset} returned nothing"))
        .read_to_vec()
        .unwrap();
    assert!(
        got == batch,
        "{ctx}: read at {offset} returned the wrong bytes"
    );
}

/// Checks the leader epoch cache against the epochs stamped in `batches`.
fn check_epochs(log: &Log, batches: &[Vec<u8>]) -> Result<(), String> {
    let mut runs: Vec<(i32, i64)> = Vec::new();
    for bytes in batches {
        let batch = RecordBatch::parse(bytes).unwrap();
        let epoch = batch.partition_leader_epoch();
        if runs.last().is_none_or(|&(e, _)| e != epoch) {
            runs.push((epoch, batch.base_offset()));
        }
    }
    let latest = runs.last().map(|&(e, _)| e);
    if log.latest_epoch() != latest {
        return Err(format!(
            "latest leader epoch {:?}, the log says {latest:?}",
            log.latest_epoch()
        ));
    }
    let leo = log.log_end_offset();
    for (i, &(epoch, _)) in runs.iter().enumerate() {
        let end = runs.get(i + 1).map_or(leo, |&(_, start)| start);
        let got = log.end_offset_for_epoch(epoch);
        if got != (epoch, end) {
            return Err(format!(
                "end offset for leader epoch {epoch} is {got:?}, the log says {end}"
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Kill test
// ---------------------------------------------------------------------------------------------

const CHILD_DIR_ENV: &str = "GREGOR_CRASH_CHILD_DIR";
const CHILD_GEN_ENV: &str = "GREGOR_CRASH_GENERATION";
const CHILD_RECOVERY_POINT_ENV: &str = "GREGOR_CRASH_RECOVERY_POINT";
/// Marks the child's report lines (libtest may print on the same stdout).
const MARK: &str = "@crash ";
const APPENDERS: i64 = 3;
/// Producer ids are `generation * PIDS_PER_GENERATION + appender`.
const PIDS_PER_GENERATION: i64 = 8;
/// Start a new log directory once the current one holds this much (soak runs).
const MAX_LOG_BYTES: u64 = 24 << 20;

fn kill_config() -> LogConfig {
    LogConfig::from_pairs([
        ("segment.bytes", "65536"),
        ("index.interval.bytes", "300"),
        ("segment.index.bytes", "1200"),
    ])
    .unwrap()
}

/// The batch appender `pid % 8` of child `pid / 8` sends with base sequence `seq`: fully
/// determined by `(pid, seq)`, so the parent can regenerate any batch it finds in the log.
/// Producer id and sequence are stored in the batch header (inside the CRC) for that purpose,
/// and form a valid idempotent stream per producer.
fn kill_batch(pid: i64, seq: i32) -> Vec<u8> {
    let mut rng = Rng::new((pid as u64) << 32 ^ seq as u64);
    let codec = CODECS[rng.below(5) as usize];
    let count = if rng.one_in(10) {
        1 + rng.below(100)
    } else {
        1 + rng.below(8)
    };
    let generation_time = 1_600_000_000_000 + (pid / PIDS_PER_GENERATION) * 10_000_000;
    let mut builder = RecordBatchBuilder::new(0, codec).producer(pid, 0, seq);
    for i in 0..count {
        let len = if count <= 8 && rng.one_in(25) {
            rng.range(1000, 5000)
        } else {
            rng.range(0, 200)
        } as usize;
        let key = format!("p{pid}-s{}", i64::from(seq) + i as i64);
        let timestamp = generation_time + (i64::from(seq) + i as i64) * 3 + rng.range(-500, 500);
        let headers = if rng.one_in(4) {
            vec![RecordHeader::new("h", Some(rng.bytes(8)))]
        } else {
            Vec::new()
        };
        let value = value(&mut rng, len);
        builder.append(
            i as i64,
            timestamp,
            Some(key.as_bytes()),
            Some(&value),
            &headers,
        );
    }
    builder.build().unwrap()
}

fn env_i64(name: &str) -> i64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing"))
}

/// Writes one report line; false once the parent is gone.
fn emit(out: &Mutex<std::io::Stdout>, line: std::fmt::Arguments<'_>) -> bool {
    let out = out.lock().unwrap();
    let mut out = out.lock();
    writeln!(out, "{MARK}{line}").is_ok() && out.flush().is_ok()
}

/// Only the child half of [`kill_and_recover`], which runs this test binary with
/// `--exact crash_child --ignored` and `GREGOR_CRASH_CHILD_DIR` set, then kills it. Without
/// that variable (a plain `cargo test -- --ignored`) it returns immediately.
///
/// It recovers the log (as after a crash), reports `start <log end>`, then appends from three
/// threads until killed, reporting `durable <first> <last> <bytes> <hash>` once
/// `flush_if_required` has returned for an append.
#[test]
#[ignore = "child process of kill_and_recover, which runs it"]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let generation = env_i64(CHILD_GEN_ENV);
    let recovery_point = env_i64(CHILD_RECOVERY_POINT_ENV);
    let log = Arc::new(open(
        Path::new(&dir),
        kill_config(),
        recovery_point,
        false,
        "child",
    ));
    let out = Arc::new(Mutex::new(std::io::stdout()));
    emit(
        &out,
        format_args!("start {} {}", log.log_end_offset(), log.log_start_offset()),
    );
    // A child whose parent died stops on its own: at a write error or at this deadline.
    let deadline = Instant::now() + Duration::from_secs(60);
    let appenders: Vec<_> = (0..APPENDERS)
        .map(|appender| {
            let (log, out) = (Arc::clone(&log), Arc::clone(&out));
            thread::spawn(move || {
                let pid = generation * PIDS_PER_GENERATION + appender;
                let mut rng = Rng::new(pid as u64);
                let mut seq = 0i32;
                while Instant::now() < deadline {
                    let mut records = Vec::new();
                    for _ in 0..if rng.one_in(6) { 2 + rng.below(2) } else { 1 } {
                        let batch = kill_batch(pid, seq);
                        if !records.is_empty() && records.len() + batch.len() > 60_000 {
                            break;
                        }
                        seq += RecordBatch::parse(&batch).unwrap().records_count();
                        records.extend_from_slice(&batch);
                    }
                    let info = log
                        .append_as_leader(&mut records, generation as i32, now_ms())
                        .expect("append");
                    log.flush_if_required(&info, now_ms()).expect("flush");
                    assert!(
                        log.durable_offset() > info.last_offset,
                        "{info:?} not durable"
                    );
                    let reported = emit(
                        &out,
                        format_args!(
                            "durable {} {} {} {:016x}",
                            info.first_offset,
                            info.last_offset,
                            records.len(),
                            fnv1a(&records)
                        ),
                    );
                    if !reported {
                        return;
                    }
                }
            })
        })
        .collect();
    for appender in appenders {
        appender.join().unwrap();
    }
}

/// One append the child reported durable.
#[derive(Debug, Clone, Copy)]
struct Durable {
    first: i64,
    last: i64,
    len: usize,
    hash: u64,
}

/// What the parent learnt from one child run.
struct ChildRun {
    start: Option<i64>,
    durable: Vec<Durable>,
}

/// Runs one child on `dir` and SIGKILLs it: either soon after spawning (possibly during
/// recovery) or 5–150 ms after it reported that it recovered.
fn run_child(dir: &Path, generation: i64, recovery_point: i64, rng: &mut Rng) -> ChildRun {
    // This very binary. `/proc/self/exe` still names it if a concurrent build replaces the
    // file on disk (cargo does, in a shared target directory); `current_exe` elsewhere.
    let exe = Path::new("/proc/self/exe");
    let exe = if exe.exists() {
        exe.to_path_buf()
    } else {
        std::env::current_exe().unwrap()
    };
    let mut child = Command::new(exe)
        .args(["--exact", "crash_child", "--nocapture", "--ignored"])
        .env(CHILD_DIR_ENV, dir)
        .env(CHILD_GEN_ENV, generation.to_string())
        .env(CHILD_RECOVERY_POINT_ENV, recovery_point.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                // A line cut short by the kill is not a report.
                Ok(_) if !line.ends_with('\n') => break,
                Ok(_) => {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut stderr = child.stderr.take().unwrap();
    let stderr_reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut lines = Vec::new();
    if rng.one_in(6) {
        thread::sleep(Duration::from_millis(rng.below(40)));
    } else {
        let deadline = Instant::now() + Duration::from_secs(120);
        while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            let started = line.contains(&format!("{MARK}start "));
            lines.push(line);
            if started {
                break;
            }
        }
        thread::sleep(Duration::from_millis(rng.range(5, 150) as u64));
    }
    let exited_on_its_own = child.try_wait().unwrap();
    let _ = child.kill();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    lines.extend(rx.try_iter());
    let stderr = stderr_reader.join().unwrap();
    assert!(
        exited_on_its_own.is_none() && status.signal() == Some(9),
        "generation {generation}: the child was not killed but exited ({status:?}):\n{stderr}"
    );
    let mut run = ChildRun {
        start: None,
        durable: Vec::new(),
    };
    for line in &lines {
        let Some((_, report)) = line.split_once(MARK) else {
            continue;
        };
        let fields: Vec<&str> = report.split_whitespace().collect();
        match fields.as_slice() {
            ["start", leo, _] => run.start = Some(leo.parse().unwrap()),
            ["durable", first, last, len, hash] => run.durable.push(Durable {
                first: first.parse().unwrap(),
                last: last.parse().unwrap(),
                len: len.parse().unwrap(),
                hash: u64::from_str_radix(hash, 16).unwrap(),
            }),
            _ => panic!("unexpected report {line:?}"),
        }
    }
    run
}

/// A SIGKILL keeps the page cache, so what was written but never fsynced survives it; a power
/// loss would not keep it. This simulates that loss: the last segment is cut at a random byte
/// past `durable_end` (what was acknowledged, or synced by the last recovery). Returns how many
/// bytes went.
fn lose_unsynced_tail(dir: &Path, durable_end: i64, rng: &mut Rng) -> u64 {
    let path = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .max()
        .expect("a segment");
    let bytes = std::fs::read(&path).unwrap();
    let mut iter = BatchIter::new(&bytes);
    let mut from = 0;
    while let Some(Ok(batch)) = iter.next() {
        if batch.base_offset() >= durable_end {
            break;
        }
        from = iter.position();
    }
    let cut = rng.range(from as i64, bytes.len() as i64) as u64;
    set_len(&path, cut);
    bytes.len() as u64 - cut
}

/// Recovers the log after a kill and checks it. Returns the log end offset and size.
#[allow(clippy::too_many_arguments)]
fn verify_after_kill(
    dir: &Path,
    recovery_point: i64,
    durable: &[Durable],
    checked_up_to: i64,
    rng: &mut Rng,
    ctx: &str,
) -> (i64, u64, usize) {
    let log = open(dir, kill_config(), recovery_point, false, ctx);
    assert_eq!(log.log_start_offset(), 0, "{ctx}");
    let leo = log.log_end_offset();
    // (b) the files hold valid batches only, contiguous from offset 0, and Log::read agrees.
    let (batches, segments) = scan_segment_files(dir, 0, ctx);
    let via_log = read_all(&log, ctx);
    assert_eq!(via_log.len(), batches.len(), "{ctx}");
    assert!(
        via_log == batches,
        "{ctx}: Log::read disagrees with the files"
    );
    // Every batch is one a child made (regenerated from producer id and sequence), producers'
    // sequences have no holes, and generations follow each other.
    let mut next_seq: HashMap<i64, i32> = HashMap::new();
    let mut previous_generation = 0;
    let mut by_offset = HashMap::new();
    for (i, bytes) in batches.iter().enumerate() {
        let batch = RecordBatch::parse(bytes).unwrap();
        let (pid, seq) = (batch.producer_id(), batch.base_sequence());
        // Older batches were regenerated in earlier rounds; the files' CRCs vouch for them.
        if batch.base_offset() >= checked_up_to || rng.one_in(20) {
            let mut expected = kill_batch(pid, seq);
            let mut patch = RecordBatchMut::parse(&mut expected).unwrap();
            patch.set_base_offset(batch.base_offset());
            patch.set_partition_leader_epoch(batch.partition_leader_epoch());
            assert!(
                expected == *bytes,
                "{ctx}: batch at {} is not one a child appended",
                batch.base_offset()
            );
        }
        assert_eq!(
            i64::from(batch.partition_leader_epoch()),
            pid / PIDS_PER_GENERATION,
            "{ctx}: leader epoch of the batch at {}",
            batch.base_offset()
        );
        assert!(pid / PIDS_PER_GENERATION >= previous_generation, "{ctx}");
        previous_generation = pid / PIDS_PER_GENERATION;
        let want = next_seq.entry(pid).or_insert(0);
        assert_eq!(
            seq,
            *want,
            "{ctx}: producer {pid} has a hole before offset {}",
            batch.base_offset()
        );
        *want += batch.records_count();
        by_offset.insert(batch.base_offset(), i);
    }
    // (a) every append reported durable is there, byte for byte.
    for d in durable {
        let &first = by_offset
            .get(&d.first)
            .unwrap_or_else(|| panic!("{ctx}: durable append {d:?} was lost (log end {leo})"));
        let mut bytes = Vec::new();
        let mut last = -1;
        for batch in &batches[first..] {
            if last >= d.last {
                break;
            }
            last = RecordBatch::parse(batch).unwrap().last_offset();
            bytes.extend_from_slice(batch);
        }
        assert_eq!(last, d.last, "{ctx}: durable append {d:?}");
        assert!(
            bytes.len() == d.len && fnv1a(&bytes) == d.hash,
            "{ctx}: durable append {d:?} came back different"
        );
    }
    // Point reads: every batch new since the last check, and a sample of older ones.
    for bytes in &batches {
        let batch = RecordBatch::parse(bytes).unwrap();
        if batch.base_offset() < checked_up_to && !rng.one_in(50) {
            continue;
        }
        let mid = rng.range(batch.base_offset(), batch.last_offset());
        for offset in [batch.base_offset(), mid, batch.last_offset()] {
            check_point_read(&log, offset, bytes, ctx);
        }
    }
    if let Err(e) = check_epochs(&log, &batches) {
        panic!("{ctx}: leader epoch cache: {e}");
    }
    let size = log.size_in_bytes();
    (leo, size, segments)
}

/// The child reports `durable` only after `flush_if_required` returned; after a SIGKILL at
/// any moment (and, a third of the time, the loss of a random part of what was not yet
/// durable), recovery must keep all of that, and keep the log a clean sequence of batches.
#[test]
fn kill_and_recover() {
    let soak = env_flag("GREGOR_SOAK");
    let rounds = if soak { 400 } else { 40 };
    let seed = base_seed();
    let mut rng = Rng::new(seed);
    let root = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut dir_number = 0;
    let mut dir = root.path().join("crash-0");
    let mut durable: Vec<Durable> = Vec::new();
    let mut leo = 0;
    let mut early_kills = 0;
    let mut lost_bytes = 0;
    let mut total_durable = 0;
    let mut last_size = 0;
    let mut segments = 0;
    for round in 0..rounds {
        let generation = round + 1;
        if last_size > MAX_LOG_BYTES {
            dir_number += 1;
            dir = root.path().join(format!("crash-{dir_number}"));
            durable.clear();
            leo = 0;
        }
        let ctx = format!("seed {seed} round {round} dir {}", dir.display());
        // Recovery points are stale: 0, or an offset at or below the last verified log end.
        let child_recovery_point = match rng.below(3) {
            0 => 0,
            1 => leo,
            _ => rng.range(0, leo),
        };
        let run = run_child(&dir, generation, child_recovery_point, &mut rng);
        match run.start {
            // (c) the child continued from the log end the last recovery found.
            Some(start) => assert_eq!(start, leo, "{ctx}: child recovered a different log end"),
            None => early_kills += 1,
        }
        for d in &run.durable {
            assert!(d.first >= leo, "{ctx}: {d:?} below the recovered end {leo}");
        }
        total_durable += run.durable.len();
        let durable_end = run.durable.iter().map(|d| d.last + 1).fold(leo, i64::max);
        durable.extend(run.durable);
        if rng.one_in(3) {
            lost_bytes += lose_unsynced_tail(&dir, durable_end, &mut rng);
        }
        let recovery_point = if rng.one_in(2) { 0 } else { rng.range(0, leo) };
        let (new_leo, size, n) =
            verify_after_kill(&dir, recovery_point, &durable, leo, &mut rng, &ctx);
        assert!(
            new_leo >= leo,
            "{ctx}: log end went back from {leo} to {new_leo}"
        );
        assert!(
            new_leo >= durable_end,
            "{ctx}: log end {new_leo} is below the durable end {durable_end}"
        );
        leo = new_leo;
        last_size = size;
        segments = n;
    }
    eprintln!(
        "kill_and_recover: seed {seed}, {rounds} kills ({early_kills} soon after spawn), \
         {total_durable} durable appends checked, {lost_bytes} unsynced bytes dropped after \
         kills, final log end {leo} in {segments} segments \
         ({last_size} bytes), \
         {:.1?}",
        started.elapsed()
    );
}

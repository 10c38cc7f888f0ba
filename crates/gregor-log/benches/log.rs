//! Storage-engine throughput: appends (page cache only, and durable through group commit) and
//! sequential reads of one partition log.
//!
//! Run with `cargo bench -p gregor-log --bench log` (see `bench/README.md`). Logs are created
//! under Cargo's target tmp dir (`target/tmp`, on the same file system as the project's data) or
//! under `$GREGOR_BENCH_DIR` if set, so that fsync costs are those of the real disk.
//!
//! Records carry a 1 KiB value and no key, uncompressed. Batches are built once and the same
//! buffer is appended again and again: `append_as_leader` only patches the base offset and the
//! partition leader epoch in place, both outside the CRC, so re-appending the buffer is valid
//! and costs no copy. Every append still validates the batch (CRC-32C over the whole batch),
//! as a produce request would.

use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use gregor_log::{LoadOptions, Log, LogConfig, TopicPartition};
use gregor_protocol::batch::{Compression, RecordBatchBuilder};

/// Fixed clock: nothing here depends on time passing (segment.ms is 7 days).
const NOW_MS: i64 = 1_700_000_000_000;
const LEADER_EPOCH: i32 = 0;
const RECORD_VALUE: usize = 1024;
/// (label, records per batch): 16 x 1 KiB ≈ 16 KiB and 1024 x 1 KiB ≈ 1 MiB batches.
const BATCH_SHAPES: [(&str, usize); 2] = [("16KiB", 16), ("1MiB", 1024)];
/// Appenders sharing one log in the group-commit benchmarks; `$GREGOR_BENCH_THREADS`
/// (e.g. `4,8,32`) overrides.
const THREAD_COUNTS: [usize; 2] = [4, 8];
/// Append benchmarks start a fresh log (outside the timed region) once this much is written,
/// so the page-cache-only case never hits dirty-page writeback throttling.
const RESET_BYTES: u64 = 256 << 20;
/// Amount written before the read benchmark.
const READ_LOG_BYTES: u64 = 256 << 20;
const FETCH_MAX_BYTES: usize = 1 << 20;

fn bench_root() -> PathBuf {
    let root = std::env::var_os("GREGOR_BENCH_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")), PathBuf::from);
    std::fs::create_dir_all(&root).expect("create benchmark directory");
    root
}

fn thread_counts() -> Vec<usize> {
    match std::env::var("GREGOR_BENCH_THREADS") {
        Ok(list) => list
            .split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .expect("GREGOR_BENCH_THREADS: comma-separated counts")
            })
            .collect(),
        Err(_) => THREAD_COUNTS.to_vec(),
    }
}

/// One uncompressed batch of `records` records with 1 KiB values.
fn make_batch(records: usize) -> Vec<u8> {
    let value = vec![b'v'; RECORD_VALUE];
    let mut builder = RecordBatchBuilder::new(0, Compression::None);
    for i in 0..records {
        builder.append(i as i64, NOW_MS, None, Some(&value), &[]);
    }
    builder.build().expect("valid batch")
}

/// Kafka's defaults (segment.bytes 1 GiB, flush.messages 1 = Gregor's durable default), except
/// max.message.bytes: a 1024 x 1 KiB batch is ~1.06 MB, just over Kafka's 1 MiB + 12 default.
fn config() -> LogConfig {
    LogConfig::from_pairs([
        ("segment.bytes", "1073741824"),
        ("max.message.bytes", "4194304"),
    ])
    .expect("valid config")
}

/// A log in its own temporary directory that can be thrown away and recreated.
struct Fixture {
    root: tempfile::TempDir,
    generation: u32,
    log: Arc<Log>,
}

impl Fixture {
    fn new() -> Fixture {
        let root = tempfile::tempdir_in(bench_root()).expect("tempdir");
        let log = Arc::new(open_log(&root.path().join("bench-0")));
        Fixture {
            root,
            generation: 0,
            log,
        }
    }

    /// Replaces the log with an empty one (in a new directory) if it holds more than `limit`
    /// bytes, and deletes the old one. Called outside the timed region.
    ///
    /// The deletion is committed at once with an fsync of the parent directory: otherwise the
    /// next timed fdatasync would carry the journal commit that frees the old log's blocks (and,
    /// on a file system mounted with `discard`, as /work here is, waits for the TRIM of up to
    /// `limit` bytes: ~100+ ms measured).
    fn reset_if_larger(&mut self, limit: u64) {
        if self.log.size_in_bytes() > limit {
            self.generation += 1;
            let path = self.root.path().join(format!("bench-{}", self.generation));
            let old = std::mem::replace(&mut self.log, Arc::new(open_log(&path)));
            let old_dir = old.dir().to_path_buf();
            drop(old);
            std::fs::remove_dir_all(old_dir).expect("remove old log");
            std::fs::File::open(self.root.path())
                .and_then(|dir| dir.sync_all())
                .expect("sync benchmark directory");
        }
    }
}

fn open_log(path: &std::path::Path) -> Log {
    Log::open(
        path.to_path_buf(),
        TopicPartition::new("bench", 0),
        config(),
        LoadOptions::new(NOW_MS),
    )
    .expect("open log")
}

/// Appends without fsync: the cost of validation, offset assignment, indexing and the write
/// into the page cache.
fn append_page_cache(c: &mut Criterion) {
    let mut group = c.benchmark_group("append/page-cache");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (label, records) in BATCH_SHAPES {
        let mut batch = make_batch(records);
        group.throughput(Throughput::Bytes(batch.len() as u64));
        let mut fixture = Fixture::new();
        group.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter_custom(|iters| {
                fixture.reset_if_larger(RESET_BYTES);
                let log = &fixture.log;
                let start = Instant::now();
                for _ in 0..iters {
                    log.append_as_leader(&mut batch, LEADER_EPOCH, NOW_MS)
                        .expect("append");
                }
                start.elapsed()
            });
        });
    }
    group.finish();
}

/// One appender, durable: `flush_if_required` after every append, so one fdatasync per batch
/// (group commit has nobody to group with). The worst case.
fn append_durable_single(c: &mut Criterion) {
    let mut group = c.benchmark_group("append/durable-1-thread");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for (label, records) in BATCH_SHAPES {
        let mut batch = make_batch(records);
        group.throughput(Throughput::Bytes(batch.len() as u64));
        let mut fixture = Fixture::new();
        let mut appends = 0u64;
        group.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter_custom(|iters| {
                fixture.reset_if_larger(RESET_BYTES);
                let log = &fixture.log;
                let start = Instant::now();
                for _ in 0..iters {
                    let info = log
                        .append_as_leader(&mut batch, LEADER_EPOCH, NOW_MS)
                        .expect("append");
                    log.flush_if_required(&info, NOW_MS).expect("flush");
                }
                let elapsed = start.elapsed();
                appends += iters;
                elapsed
            });
        });
        if appends > 0 {
            eprintln!("  ({label}: {appends} durable appends, one fdatasync each)");
        }
    }
    group.finish();
}

/// `threads` appenders share one log, each making its own appends durable with
/// `flush_if_required`: group commit lets one fdatasync cover every batch appended while the
/// previous one ran. Throughput counts the batches of all threads.
fn append_durable_group_commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("append/durable-group-commit");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for (label, records) in BATCH_SHAPES {
        let batch = make_batch(records);
        group.throughput(Throughput::Bytes(batch.len() as u64));
        for threads in thread_counts() {
            let mut fixture = Fixture::new();
            let mut buffers: Vec<Vec<u8>> = vec![batch.clone(); threads];
            let (mut appends, mut flushes) = (0u64, 0u64);
            let id = BenchmarkId::new(label, format!("{threads}-threads"));
            group.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    fixture.reset_if_larger(RESET_BYTES);
                    let log = &fixture.log;
                    let flushes_before = log.flush_count();
                    let barrier = Barrier::new(threads + 1);
                    let start = std::thread::scope(|scope| {
                        for (t, buffer) in buffers.iter_mut().enumerate() {
                            // Spread `iters` appends over the threads.
                            let mine = iters / threads as u64
                                + u64::from((t as u64) < iters % threads as u64);
                            let barrier = &barrier;
                            scope.spawn(move || {
                                barrier.wait();
                                for _ in 0..mine {
                                    let info = log
                                        .append_as_leader(buffer, LEADER_EPOCH, NOW_MS)
                                        .expect("append");
                                    log.flush_if_required(&info, NOW_MS).expect("flush");
                                }
                            });
                        }
                        barrier.wait();
                        // Leaving the scope joins every appender.
                        Instant::now()
                    });
                    let elapsed = start.elapsed();
                    appends += iters;
                    flushes += log.flush_count() - flushes_before;
                    elapsed
                });
            });
            if appends > 0 {
                eprintln!(
                    "  ({label}, {threads} threads: {appends} appends, {flushes} fdatasyncs, {:.2} batches per fsync)",
                    appends as f64 / flushes.max(1) as f64
                );
            }
        }
    }
    group.finish();
}

/// Sequential consumer: the whole log from offset 0 in 1 MiB fetches, copied into memory with
/// `read_to_vec`. The log was just written and fsynced, so the page cache is warm: this is the
/// cost of the lookup path and the copy, not of the disk.
fn read_sequential(c: &mut Criterion) {
    let mut group = c.benchmark_group("read/sequential-1MiB-fetches");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for (label, records) in BATCH_SHAPES {
        let fixture = Fixture::new();
        let log = &fixture.log;
        let mut batch = make_batch(records);
        while log.size_in_bytes() < READ_LOG_BYTES {
            log.append_as_leader(&mut batch, LEADER_EPOCH, NOW_MS)
                .expect("append");
        }
        log.flush(NOW_MS).expect("flush");
        let total = log.size_in_bytes();
        let end = log.log_end_offset();
        group.throughput(Throughput::Bytes(total));
        group.bench_function(BenchmarkId::new("batches", label), |b| {
            b.iter(|| {
                let mut offset = 0;
                let mut bytes = 0usize;
                while offset < end {
                    let slice = log
                        .read(offset, FETCH_MAX_BYTES, None, true)
                        .expect("read")
                        .expect("data below the log end");
                    let data = slice.read_to_vec().expect("read slice");
                    bytes += data.len();
                    offset = next_offset(&data);
                }
                assert_eq!(bytes as u64, total);
                bytes
            });
        });
    }
    group.finish();
}

/// Opening a 10 GiB log after a clean shutdown: nine inactive 1 GiB segments and a full 1 GiB
/// active segment. A clean open reads no inactive segment (their indexes load lazily on first
/// use), so the inactive ones are sparse files of the right size with trimmed index files; the
/// active one holds real batches, because its index is loaded and its tail scanned to find the
/// log end offset.
fn open_clean(c: &mut Criterion) {
    const GIB: u64 = 1 << 30;
    let root = tempfile::tempdir_in(bench_root()).expect("tempdir");
    let path = root.path().join("bench-0");
    std::fs::create_dir_all(&path).expect("create log dir");
    let batch = make_batch(1024);
    let per_segment = GIB / batch.len() as u64;
    for i in 0..9u64 {
        let base = i * per_segment * 1024;
        let name = |ext: &str| path.join(format!("{base:020}.{ext}"));
        std::fs::File::create(name("log"))
            .and_then(|f| f.set_len(GIB))
            .expect("sparse segment");
        std::fs::write(name("index"), []).expect("index");
        std::fs::write(name("timeindex"), []).expect("time index");
    }
    let active_base = 9 * per_segment * 1024;
    std::fs::write(path.join(format!("{active_base:020}.log")), []).expect("active segment");
    let clean = LoadOptions {
        had_clean_shutdown: true,
        ..LoadOptions::new(NOW_MS)
    };
    {
        let log = Log::open(
            path.clone(),
            TopicPartition::new("bench", 0),
            config(),
            clean,
        )
        .expect("open");
        let mut buf = batch.clone();
        while log.size_in_bytes() < 10 * GIB - batch.len() as u64 {
            log.append_as_leader(&mut buf, LEADER_EPOCH, NOW_MS)
                .expect("append");
        }
        log.close(NOW_MS).expect("close");
    }
    let mut group = c.benchmark_group("open");
    group.sample_size(20);
    // Each timed open is followed by an untimed close, so that every open finds what a clean
    // shutdown leaves (indexes trimmed; an unclosed active index would be preallocated).
    group.bench_function("clean-shutdown/10GiB", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let started = Instant::now();
                let log = Log::open(
                    path.clone(),
                    TopicPartition::new("bench", 0),
                    config(),
                    clean,
                )
                .expect("open");
                total += started.elapsed();
                log.close(NOW_MS).expect("close");
            }
            total
        })
    });
    group.finish();
}

/// The offset after the last whole batch in `data` (a fetch response's records).
fn next_offset(data: &[u8]) -> i64 {
    let mut next = 0;
    for batch in gregor_protocol::batch::BatchIter::new(data) {
        next = batch.expect("stored batch").next_offset();
    }
    next
}

criterion_group!(
    benches,
    append_page_cache,
    append_durable_single,
    append_durable_group_commit,
    read_sequential,
    open_clean
);
criterion_main!(benches);

//! Model-based property test of [`Log`]: random sequences of appends, reads, rolls, flushes,
//! truncations, DeleteRecords, retention passes, reopens and timestamp lookups, each checked
//! against a plain in-memory model of what the partition must hold.
//!
//! The model is the list of batches physically present (first offset and bytes exactly as the
//! log should store them), the log start offset and the log end offset. Segment boundaries are
//! not modelled: where an answer depends on them (a read stops at the end of a segment,
//! retention deletes whole segments) they are taken from [`Log::segment_base_offsets`], and
//! checked for consistency with the model after every operation.
//!
//! `PROPTEST_CASES=n` runs more cases (default 64). A failing case prints its trace (each
//! operation with its offsets resolved) before proptest's minimal input. Logs live under
//! `/dev/shm` when it exists, so fsyncs cost nothing. Bugs the model found are pinned by the
//! deterministic tests in `regressions.rs`.

use std::path::PathBuf;

use gregor_log::{AppendInfo, LoadOptions, Log, LogConfig, LogError, TopicPartition};
use gregor_protocol::batch::{BatchIter, Compression, RecordBatch, RecordBatchBuilder};
use proptest::prelude::*;
use proptest::sample::Index;

/// Wall clock (ms) at the start of every case; appends move it forward.
const START_CLOCK: i64 = 1_000_000;

// ---------------------------------------------------------------------------------------------
// Operations and their generators
// ---------------------------------------------------------------------------------------------

/// Log settings of one case: tiny segments and indexes so that every kind of roll happens.
#[derive(Debug, Clone)]
struct Settings {
    segment_bytes: u64,
    index_interval_bytes: u64,
    segment_index_bytes: u64,
    segment_ms: Option<i64>,
}

impl Settings {
    /// The config the log normally runs with (retention off; retention ops swap in their own).
    fn config(&self) -> LogConfig {
        let mut config = LogConfig::from_pairs([
            ("retention.ms", "-1"),
            ("retention.bytes", "-1"),
            ("file.delete.delay.ms", "0"),
        ])
        .unwrap();
        config
            .set("segment.bytes", &self.segment_bytes.to_string())
            .unwrap();
        config
            .set(
                "index.interval.bytes",
                &self.index_interval_bytes.to_string(),
            )
            .unwrap();
        config
            .set("segment.index.bytes", &self.segment_index_bytes.to_string())
            .unwrap();
        if let Some(ms) = self.segment_ms {
            config.set("segment.ms", &ms.to_string()).unwrap();
        }
        config
    }
}

#[derive(Debug, Clone)]
struct RecordSpec {
    /// Record timestamp relative to the clock: timestamps are not monotonic.
    ts_delta: i64,
    key_len: usize,
    value_len: usize,
}

#[derive(Debug, Clone)]
struct BatchSpec {
    codec: Compression,
    records: Vec<RecordSpec>,
    /// Repetitive values (compress well) or pseudo-random ones (do not).
    compressible: bool,
    seed: u64,
}

#[derive(Debug, Clone)]
enum ReadAt {
    InRange(Index),
    BelowStart,
    PastEnd,
}

#[derive(Debug, Clone, Copy)]
enum Reopen {
    /// `close` then open with `had_clean_shutdown`.
    Clean,
    /// `close` then open as after a crash, recovering every segment.
    CloseThenRecover,
    /// Drop without closing (index tails never written) and recover from the recovery point.
    Crash,
}

#[derive(Debug, Clone)]
enum Op {
    Append {
        batches: Vec<BatchSpec>,
        advance_ms: i64,
        new_epoch: bool,
    },
    Read {
        at: ReadAt,
        max_bytes: usize,
        min_one_batch: bool,
        upper_bound: Option<Index>,
    },
    ForceRoll,
    Flush,
    /// Target in `[0, LEO + 1]` when `anywhere`, else near the log start..end.
    Truncate {
        target: Index,
        anywhere: bool,
    },
    /// Target in `[0, LEO + 1]`.
    DeleteRecords(Index),
    Retention {
        retention_ms: Option<i64>,
        retention_bytes: Option<i64>,
        advance_ms: i64,
    },
    Reopen(Reopen),
    OffsetForTimestamp(Index),
}

fn settings() -> impl Strategy<Value = Settings> {
    (
        1500u64..6000,
        0u64..500,
        12u64..256,
        prop::option::weighted(0.3, 500i64..4000),
    )
        .prop_map(
            |(segment_bytes, index_interval_bytes, segment_index_bytes, segment_ms)| Settings {
                segment_bytes,
                index_interval_bytes,
                segment_index_bytes,
                segment_ms,
            },
        )
}

fn compression() -> impl Strategy<Value = Compression> {
    prop_oneof![
        3 => Just(Compression::None),
        1 => Just(Compression::Gzip),
        1 => Just(Compression::Snappy),
        1 => Just(Compression::Lz4),
        1 => Just(Compression::Zstd),
    ]
}

fn batch_spec() -> impl Strategy<Value = BatchSpec> {
    let record =
        (-1000i64..1000, 0usize..8, 0usize..200).prop_map(|(ts_delta, key_len, value_len)| {
            RecordSpec {
                ts_delta,
                key_len,
                value_len,
            }
        });
    (
        compression(),
        prop::collection::vec(record, 1..8),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(codec, records, compressible, seed)| BatchSpec {
            codec,
            records,
            compressible,
            seed,
        })
}

fn op() -> impl Strategy<Value = Op> {
    let batches = prop_oneof![
        4 => prop::collection::vec(batch_spec(), 1..=1),
        1 => prop::collection::vec(batch_spec(), 2..=3),
    ];
    let read_at = prop_oneof![
        10 => any::<Index>().prop_map(ReadAt::InRange),
        1 => Just(ReadAt::BelowStart),
        1 => Just(ReadAt::PastEnd),
    ];
    let reopen = prop_oneof![
        Just(Reopen::Clean),
        Just(Reopen::CloseThenRecover),
        Just(Reopen::Crash),
    ];
    prop_oneof![
        10 => (batches, 0i64..400, prop::bool::weighted(0.15)).prop_map(
            |(batches, advance_ms, new_epoch)| Op::Append { batches, advance_ms, new_epoch }
        ),
        4 => (read_at, 0usize..3000, any::<bool>(), prop::option::of(any::<Index>())).prop_map(
            |(at, max_bytes, min_one_batch, upper_bound)| Op::Read {
                at,
                max_bytes,
                min_one_batch,
                upper_bound,
            }
        ),
        1 => Just(Op::ForceRoll),
        1 => Just(Op::Flush),
        2 => (any::<Index>(), prop::bool::weighted(0.3))
            .prop_map(|(target, anywhere)| Op::Truncate { target, anywhere }),
        1 => any::<Index>().prop_map(Op::DeleteRecords),
        2 => (
            prop::option::of(0i64..5000),
            prop::option::of(0i64..12_000),
            0i64..3000,
        )
            .prop_map(|(retention_ms, retention_bytes, advance_ms)| Op::Retention {
                retention_ms,
                retention_bytes,
                advance_ms,
            }),
        2 => reopen.prop_map(Op::Reopen),
        2 => any::<Index>().prop_map(Op::OffsetForTimestamp),
    ]
}

/// Builds the batch a producer would send (base offset 0) and returns it with its record
/// timestamps.
fn build_batch(spec: &BatchSpec, clock: i64) -> (Vec<u8>, Vec<i64>) {
    let mut state = spec.seed | 1;
    let mut next_byte = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 32) as u8
    };
    let mut builder = RecordBatchBuilder::new(0, spec.codec);
    let mut stamps = Vec::new();
    for (i, r) in spec.records.iter().enumerate() {
        let ts = clock + r.ts_delta;
        let key: Vec<u8> = (0..r.key_len).map(|_| next_byte()).collect();
        let value: Vec<u8> = if spec.compressible {
            vec![b'a' + (i % 3) as u8; r.value_len]
        } else {
            (0..r.value_len).map(|_| next_byte()).collect()
        };
        builder.append(
            i as i64,
            ts,
            (r.key_len > 0).then_some(&key[..]),
            Some(&value),
            &[],
        );
        stamps.push(ts);
    }
    (builder.build().unwrap(), stamps)
}

fn pick(lo: i64, hi: i64, index: &Index) -> i64 {
    assert!(lo <= hi);
    lo + index.index((hi - lo + 1) as usize) as i64
}

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

/// A batch as the log must hold it.
#[derive(Debug, Clone)]
struct StoredBatch {
    base: i64,
    last: i64,
    max_ts: i64,
    epoch: i32,
    bytes: Vec<u8>,
    /// `(offset, timestamp)` of every record.
    records: Vec<(i64, i64)>,
}

#[derive(Debug, Default)]
struct Model {
    /// Batches physically present, in offset order (including those below the log start that
    /// still sit in a segment).
    batches: Vec<StoredBatch>,
    log_start: i64,
    log_end: i64,
}

impl Model {
    fn size(&self) -> u64 {
        self.batches.iter().map(|b| b.bytes.len() as u64).sum()
    }

    /// Index of the batch holding `offset`.
    fn containing(&self, offset: i64) -> Option<usize> {
        self.batches
            .iter()
            .position(|b| b.base <= offset && offset <= b.last)
    }

    /// Bytes of every batch holding an offset `>= offset`.
    fn bytes_from(&self, offset: i64) -> Vec<u8> {
        self.batches
            .iter()
            .filter(|b| b.last >= offset)
            .flat_map(|b| b.bytes.iter().copied())
            .collect()
    }

    /// Physically removes the batches below `base` (their segments were deleted).
    fn drop_below(&mut self, base: i64) {
        self.batches.retain(|b| b.base >= base);
    }
}

/// `(base offset, last offset, size)` of the batches in `bytes`, which must be whole batches.
fn batch_spans(bytes: &[u8]) -> Vec<(i64, i64, usize)> {
    let mut spans = Vec::new();
    let mut iter = BatchIter::new(bytes);
    for batch in iter.by_ref() {
        let batch = batch.expect("reads return whole, well-formed batches");
        batch
            .validate_stored()
            .expect("stored batches pass their CRC");
        spans.push((batch.base_offset(), batch.last_offset(), batch.size()));
    }
    assert_eq!(iter.position(), bytes.len(), "trailing partial batch");
    spans
}

/// `assert_eq!` for byte strings that explains the difference in batches, not bytes.
#[track_caller]
fn assert_same_bytes(got: &[u8], expected: &[u8], what: &str) {
    if got != expected {
        let first_diff = got
            .iter()
            .zip(expected)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(expected.len()));
        panic!(
            "{what}: got {} bytes {:?}, expected {} bytes {:?}; first difference at byte {first_diff}",
            got.len(),
            batch_spans_lossy(got),
            expected.len(),
            batch_spans_lossy(expected),
        );
    }
}

fn batch_spans_lossy(bytes: &[u8]) -> Vec<(i64, i64, usize)> {
    BatchIter::new(bytes)
        .map_while(|b| b.ok())
        .map(|b| (b.base_offset(), b.last_offset(), b.size()))
        .collect()
}

/// A segment as retention sees it, derived from the model and the log's segment bases.
#[derive(Debug, Clone)]
struct SegmentView {
    base: i64,
    size: u64,
    max_ts: i64,
}

/// Retention's model: deletes the longest prefix of `segments` matching
/// `predicate(segment, next base)` (Kafka's `deletableSegments`), never an empty active
/// segment; if that is every segment, an empty one is rolled at the log end first. Returns how
/// many went and moves `log_start` up to the first survivor.
fn delete_prefix(
    segments: &mut Vec<SegmentView>,
    log_start: &mut i64,
    log_end: i64,
    mut predicate: impl FnMut(&SegmentView, Option<i64>) -> bool,
) -> usize {
    let mut n = 0;
    while n < segments.len() {
        let next = segments.get(n + 1).map(|s| s.base);
        if (next.is_none() && segments[n].size == 0) || !predicate(&segments[n], next) {
            break;
        }
        n += 1;
    }
    if n == 0 {
        return 0;
    }
    if n == segments.len() {
        segments.push(SegmentView {
            base: log_end,
            size: 0,
            max_ts: -1,
        });
    }
    segments.drain(..n);
    *log_start = (*log_start).max(segments[0].base);
    n
}

// ---------------------------------------------------------------------------------------------
// The harness: a log, its model, and one method per operation
// ---------------------------------------------------------------------------------------------

struct Harness {
    _dir: tempfile::TempDir,
    path: PathBuf,
    settings: Settings,
    log: Option<Log>,
    model: Model,
    clock: i64,
    epoch: i32,
    /// The operations applied, with offsets resolved, printed if the case fails.
    trace: std::cell::RefCell<Vec<String>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("model trace ({:?}):", self.settings);
            for line in self.trace.borrow().iter() {
                eprintln!("  {line}");
            }
        }
    }
}

/// A temporary directory, in memory where possible: the log fsyncs on every epoch change,
/// flush, close and recovery, which on a real disk would dominate the run time.
fn scratch_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().unwrap()
}

fn topic_partition() -> TopicPartition {
    TopicPartition::new("model", 0)
}

impl Harness {
    fn new(settings: Settings) -> Harness {
        let dir = scratch_dir();
        let path = dir.path().join("model-0");
        let log = Log::open(
            path.clone(),
            topic_partition(),
            settings.config(),
            LoadOptions::new(START_CLOCK),
        )
        .unwrap();
        Harness {
            _dir: dir,
            path,
            settings,
            log: Some(log),
            model: Model::default(),
            clock: START_CLOCK,
            epoch: 0,
            trace: Default::default(),
        }
    }

    fn log(&self) -> &Log {
        self.log.as_ref().expect("log is open")
    }

    fn note(&self, line: String) {
        self.trace.borrow_mut().push(line);
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Append {
                batches,
                advance_ms,
                new_epoch,
            } => self.append(batches, *advance_ms, *new_epoch),
            Op::Read {
                at,
                max_bytes,
                min_one_batch,
                upper_bound,
            } => self.read(at, *max_bytes, *min_one_batch, upper_bound.as_ref()),
            Op::ForceRoll => self.force_roll(),
            Op::Flush => self.flush(),
            Op::Truncate { target, anywhere } => {
                let m = &self.model;
                let target = if *anywhere {
                    pick(0, m.log_end + 1, target)
                } else {
                    pick((m.log_start - 2).max(0), m.log_end + 1, target)
                };
                self.truncate(target);
            }
            Op::DeleteRecords(target) => {
                let target = pick(0, self.model.log_end + 1, target);
                self.delete_records(target);
            }
            Op::Retention {
                retention_ms,
                retention_bytes,
                advance_ms,
            } => self.retention(*retention_ms, *retention_bytes, *advance_ms),
            Op::Reopen(mode) => self.reopen(*mode),
            Op::OffsetForTimestamp(index) => self.offset_for_timestamp(index),
        }
    }

    fn append(&mut self, specs: &[BatchSpec], advance_ms: i64, new_epoch: bool) {
        self.clock += advance_ms;
        if new_epoch {
            self.epoch += 1;
        }
        let built: Vec<(Vec<u8>, Vec<i64>)> =
            specs.iter().map(|s| build_batch(s, self.clock)).collect();
        let mut records: Vec<u8> = built.iter().flat_map(|b| b.0.iter().copied()).collect();
        let result = self
            .log()
            .append_as_leader(&mut records, self.epoch, self.clock);
        let sizes: Vec<usize> = built.iter().map(|b| b.0.len()).collect();
        if records.len() as u64 > self.settings.segment_bytes {
            self.note(format!("append {sizes:?} bytes: too large"));
            assert!(
                matches!(result, Err(LogError::RecordListTooLarge { .. })),
                "append of {} bytes with segment.bytes {}: {result:?}",
                records.len(),
                self.settings.segment_bytes
            );
            return;
        }
        let info = result.unwrap();
        self.note(format!(
            "append {sizes:?} bytes at {} (epoch {}, now {}) -> {}..={}",
            self.model.log_end, self.epoch, self.clock, info.first_offset, info.last_offset
        ));
        let m = &mut self.model;
        let mut position = 0;
        let mut next = m.log_end;
        let (mut max_ts, mut offset_of_max_ts) = (-1, -1);
        let mut appended = Vec::new();
        for (sent, stamps) in &built {
            let stored = &records[position..position + sent.len()];
            // Only the base offset and the leader epoch (both outside the CRC) may change.
            assert_eq!(stored[0..8], next.to_be_bytes(), "base offset");
            assert_eq!(stored[8..12], sent[8..12]);
            assert_eq!(stored[12..16], self.epoch.to_be_bytes(), "leader epoch");
            assert_eq!(stored[16..], sent[16..], "CRC-covered bytes changed");
            let batch = RecordBatch::parse(stored).unwrap();
            let decoded: Vec<(i64, i64)> = batch
                .records()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r.offset(batch.base_offset()),
                        r.timestamp(batch.base_timestamp()),
                    )
                })
                .collect();
            let expected: Vec<(i64, i64)> = stamps
                .iter()
                .enumerate()
                .map(|(i, ts)| (next + i as i64, *ts))
                .collect();
            assert_eq!(decoded, expected);
            if batch.max_timestamp() > max_ts {
                max_ts = batch.max_timestamp();
                offset_of_max_ts = batch.last_offset();
            }
            appended.push(StoredBatch {
                base: next,
                last: batch.last_offset(),
                max_ts: batch.max_timestamp(),
                epoch: self.epoch,
                bytes: stored.to_vec(),
                records: decoded,
            });
            next = batch.next_offset();
            position += sent.len();
        }
        assert_eq!(
            info,
            AppendInfo {
                first_offset: m.log_end,
                last_offset: next - 1,
                max_timestamp: max_ts,
                offset_of_max_timestamp: offset_of_max_ts,
                log_append_time: None,
                log_start_offset: m.log_start,
                batch_count: built.len(),
                size: records.len(),
                duplicate: false,
            }
        );
        m.batches.extend(appended);
        m.log_end = next;
    }

    /// What `read` must return, given the segment layout.
    fn expected_read(
        &self,
        offset: i64,
        max_bytes: usize,
        upper_bound: Option<i64>,
        min_one_batch: bool,
    ) -> Option<Vec<u8>> {
        let m = &self.model;
        let bound = upper_bound.map_or(m.log_end, |b| b.min(m.log_end));
        if offset >= bound {
            return None;
        }
        let i = m
            .containing(offset)
            .expect("offsets below the end are held");
        let first = &m.batches[i];
        // A read never crosses into the next segment.
        let segment_end = self
            .log()
            .segment_base_offsets()
            .into_iter()
            .find(|&b| b > first.base)
            .unwrap_or(i64::MAX);
        // Nothing at or past the bound: the batch holding it is excluded.
        if first.last >= bound || (!min_one_batch && first.bytes.len() > max_bytes) {
            return None;
        }
        let mut out = first.bytes.clone();
        for b in &m.batches[i + 1..] {
            if b.base >= segment_end || b.last >= bound || out.len() + b.bytes.len() > max_bytes {
                break;
            }
            out.extend_from_slice(&b.bytes);
        }
        Some(out)
    }

    fn read(
        &self,
        at: &ReadAt,
        max_bytes: usize,
        min_one_batch: bool,
        upper_bound: Option<&Index>,
    ) {
        let m = &self.model;
        let offset = match at {
            ReadAt::InRange(index) => pick(m.log_start, m.log_end, index),
            ReadAt::BelowStart if m.log_start == 0 => return,
            ReadAt::BelowStart => m.log_start - 1,
            ReadAt::PastEnd => m.log_end + 1,
        };
        let upper_bound = upper_bound.map(|i| pick(m.log_start, m.log_end, i));
        self.note(format!(
            "read({offset}, {max_bytes}, {upper_bound:?}, {min_one_batch})"
        ));
        let result = self
            .log()
            .read(offset, max_bytes, upper_bound, min_one_batch);
        if offset < m.log_start || offset > m.log_end {
            assert!(
                matches!(result, Err(LogError::OffsetOutOfRange { .. })),
                "read at {offset} outside [{}, {}]: {result:?}",
                m.log_start,
                m.log_end
            );
            return;
        }
        let got = result.unwrap().map(|slice| slice.read_to_vec().unwrap());
        let what = format!(
            "read({offset}, max_bytes {max_bytes}, bound {upper_bound:?}, min_one_batch {min_one_batch})"
        );
        if let Some(bytes) = &got {
            // Properties that hold whatever the layout: whole batches, starting with the one
            // holding the offset, within max_bytes unless a single batch was forced.
            let spans = batch_spans(bytes);
            assert!(!spans.is_empty(), "{what}: Some(empty)");
            assert!(
                spans[0].0 <= offset && offset <= spans[0].1,
                "{what}: first batch {:?}",
                spans[0]
            );
            assert!(
                bytes.len() <= max_bytes || (min_one_batch && spans.len() == 1),
                "{what}: {} bytes in {} batches",
                bytes.len(),
                spans.len()
            );
            if let Some(bound) = upper_bound {
                assert!(spans.iter().all(|s| s.1 < bound), "{what}: past the bound");
            }
        }
        let expected = self.expected_read(offset, max_bytes, upper_bound, min_one_batch);
        match (&got, &expected) {
            (Some(g), Some(e)) => assert_same_bytes(g, e, &what),
            (None, None) => {}
            _ => panic!(
                "{what}: got {:?}, expected {:?}",
                got.as_deref().map(batch_spans_lossy),
                expected.as_deref().map(batch_spans_lossy)
            ),
        }
    }

    fn force_roll(&self) {
        self.note("force_roll".into());
        let before = self.log().segment_base_offsets();
        let active_empty = self
            .model
            .batches
            .last()
            .is_none_or(|b| b.base < *before.last().unwrap());
        self.log().force_roll().unwrap();
        let mut expected = before;
        if !active_empty {
            expected.push(self.model.log_end);
        }
        assert_eq!(self.log().segment_base_offsets(), expected);
    }

    fn flush(&self) {
        self.note("flush".into());
        self.log().flush(self.clock).unwrap();
        assert_eq!(self.log().durable_offset(), self.model.log_end);
        assert_eq!(self.log().recovery_point(), self.model.log_end);
    }

    fn truncate(&mut self, target: i64) {
        let bases = self.log().segment_base_offsets();
        self.note(format!("truncate_to({target}), segments {bases:?}"));
        let result = self.log().truncate_to(target, self.clock).unwrap();
        let m = &mut self.model;
        let expected_bases = if target >= m.log_end {
            bases
        } else if target < m.log_start || target <= bases[0] {
            // Nothing at or above the log start survives: the log restarts empty at target.
            m.batches.clear();
            m.log_start = target;
            m.log_end = target;
            vec![target]
        } else {
            let straddling = m
                .batches
                .iter()
                .find(|b| b.base < target && target <= b.last)
                .map(|b| b.base);
            m.batches.retain(|b| b.last < target);
            m.log_end = straddling.unwrap_or(target);
            // The log start can never be past the log end.
            m.log_start = m.log_start.min(m.log_end);
            bases.into_iter().filter(|&b| b < target).collect()
        };
        assert_eq!(result, m.log_end, "truncate_to({target}) result");
        assert_eq!(
            self.log().segment_base_offsets(),
            expected_bases,
            "segments after truncate_to({target})"
        );
    }

    fn delete_records(&mut self, target: i64) {
        let bases = self.log().segment_base_offsets();
        self.note(format!(
            "delete_records_before({target}), segments {bases:?}"
        ));
        let result = self.log().delete_records_before(target, self.clock);
        let m = &mut self.model;
        if target > m.log_end {
            assert!(
                matches!(result, Err(LogError::OffsetOutOfRange { .. })),
                "delete_records_before({target}) past {}: {result:?}",
                m.log_end
            );
            return;
        }
        let mut expected_bases = bases.clone();
        if target > m.log_start {
            m.log_start = target;
            // Segments wholly below the new log start go.
            let doomed = bases.windows(2).take_while(|w| w[1] <= target).count();
            expected_bases.drain(..doomed);
            m.drop_below(expected_bases[0]);
        }
        assert_eq!(result.unwrap(), m.log_start);
        assert_eq!(self.log().segment_base_offsets(), expected_bases);
    }

    /// The segments as retention judges them.
    fn segment_views(&self, bases: &[i64]) -> Vec<SegmentView> {
        bases
            .iter()
            .enumerate()
            .map(|(i, &base)| {
                let next = bases.get(i + 1).copied().unwrap_or(i64::MAX);
                let held: Vec<&StoredBatch> = self
                    .model
                    .batches
                    .iter()
                    .filter(|b| b.base >= base && b.base < next)
                    .collect();
                assert!(
                    !held.is_empty() || next == i64::MAX,
                    "empty segment {base} that is not the active one (segments {bases:?})"
                );
                SegmentView {
                    base,
                    size: held.iter().map(|b| b.bytes.len() as u64).sum(),
                    max_ts: held.iter().map(|b| b.max_ts).max().unwrap_or(-1),
                }
            })
            .collect()
    }

    fn retention(
        &mut self,
        retention_ms: Option<i64>,
        retention_bytes: Option<i64>,
        advance_ms: i64,
    ) {
        let now = self.clock + advance_ms;
        let mut config = self.settings.config();
        config
            .set("retention.ms", &retention_ms.unwrap_or(-1).to_string())
            .unwrap();
        config
            .set(
                "retention.bytes",
                &retention_bytes.unwrap_or(-1).to_string(),
            )
            .unwrap();
        let bases = self.log().segment_base_offsets();
        self.note(format!(
            "delete_old_segments(now {now}) with retention.ms {retention_ms:?}, retention.bytes {retention_bytes:?}, segments {bases:?}"
        ));

        // Predict: below the log start, then retention.ms, then retention.bytes.
        let mut segments = self.segment_views(&bases);
        let mut log_start = self.model.log_start;
        let log_end = self.model.log_end;
        let start = log_start;
        let mut expected_deleted =
            delete_prefix(&mut segments, &mut log_start, log_end, |_, next| {
                next.is_some_and(|n| n <= start)
            });
        if let Some(ms) = retention_ms {
            expected_deleted += delete_prefix(&mut segments, &mut log_start, log_end, |s, _| {
                now - s.max_ts > ms
            });
        }
        if let Some(bytes) = retention_bytes {
            let mut excess = segments.iter().map(|s| s.size as i64).sum::<i64>() - bytes;
            expected_deleted += delete_prefix(&mut segments, &mut log_start, log_end, |s, _| {
                let fits = excess - s.size as i64 >= 0;
                if fits {
                    excess -= s.size as i64;
                }
                fits
            });
        }

        self.log().update_config(config);
        let deleted = self.log().delete_old_segments(now).unwrap();
        self.log().update_config(self.settings.config());

        let expected_bases: Vec<i64> = segments.iter().map(|s| s.base).collect();
        let what = format!(
            "retention.ms {retention_ms:?} retention.bytes {retention_bytes:?} now {now}, segments {bases:?}"
        );
        assert_eq!(
            self.log().segment_base_offsets(),
            expected_bases,
            "segments after {what}"
        );
        assert_eq!(deleted, expected_deleted, "segments deleted by {what}");
        let new_start = self.log().log_start_offset();
        assert!(
            new_start == self.model.log_start || expected_bases.contains(&new_start),
            "log start {new_start} moved off a segment boundary ({what})"
        );
        assert_eq!(new_start, log_start, "log start after {what}");
        self.model.log_start = log_start;
        self.model.drop_below(expected_bases[0]);
    }

    fn reopen(&mut self, mode: Reopen) {
        let bases = self.log().segment_base_offsets();
        self.note(format!("reopen {mode:?}, segments {bases:?}"));
        let log = self.log.take().unwrap();
        let log_end = self.model.log_end;
        let (clean, recovery_point) = match mode {
            Reopen::Clean => {
                log.close(self.clock).unwrap();
                assert_eq!(log.recovery_point(), log_end);
                (true, log_end)
            }
            Reopen::CloseThenRecover => {
                log.close(self.clock).unwrap();
                (false, 0)
            }
            Reopen::Crash => (false, log.recovery_point()),
        };
        drop(log);
        let options = LoadOptions {
            recovery_point,
            log_start_offset: self.model.log_start,
            had_clean_shutdown: clean,
            now_ms: self.clock,
        };
        let log = Log::open(
            self.path.clone(),
            topic_partition(),
            self.settings.config(),
            options,
        )
        .unwrap();
        self.log = Some(log);
        assert_eq!(
            self.log().segment_base_offsets(),
            bases,
            "segments after reopen ({mode:?})"
        );
    }

    fn offset_for_timestamp(&self, index: &Index) {
        let m = &self.model;
        let stamps = m.batches.iter().flat_map(|b| b.records.iter().map(|r| r.1));
        let (lo, hi) = (
            stamps.clone().min().unwrap_or(self.clock) - 5,
            stamps.max().unwrap_or(self.clock) + 5,
        );
        let target = pick(lo, hi, index);
        self.note(format!("offset_for_timestamp({target})"));
        let expected = m
            .batches
            .iter()
            .flat_map(|b| b.records.iter())
            .find(|&&(offset, ts)| offset >= m.log_start && ts >= target)
            .map(|&(offset, ts)| (ts, offset));
        assert_eq!(
            self.log().offset_for_timestamp(target).unwrap(),
            expected,
            "offset_for_timestamp({target}), log start {}",
            m.log_start
        );
        // MAX_TIMESTAMP is only well defined here when nothing below the log start is held.
        if m.batches.first().is_none_or(|b| b.base >= m.log_start) {
            let mut best: Option<(i64, i64)> = None;
            for &(offset, ts) in m.batches.iter().flat_map(|b| b.records.iter()) {
                if best.is_none_or(|(t, _)| ts > t) {
                    best = Some((ts, offset));
                }
            }
            assert_eq!(
                self.log().max_timestamp_offset().unwrap(),
                best,
                "max_timestamp_offset"
            );
        }
    }

    /// Invariants after every operation; `deep` also reads every batch on its own.
    fn check(&self, deep: bool) {
        let log = self.log();
        let m = &self.model;
        assert_eq!(log.log_start_offset(), m.log_start, "log start offset");
        assert_eq!(log.log_end_offset(), m.log_end, "log end offset");
        assert!(m.log_start <= m.log_end);
        assert_eq!(log.size_in_bytes(), m.size(), "bytes held");
        let bases = log.segment_base_offsets();
        assert!(bases.windows(2).all(|w| w[0] < w[1]));
        match m.batches.first() {
            Some(first) => assert_eq!(bases[0], first.base, "first segment base"),
            None => assert_eq!(bases, [m.log_end], "segments of an empty log"),
        }
        for (i, base) in bases.iter().enumerate() {
            assert!(
                m.batches.iter().any(|b| b.base == *base)
                    || (i == bases.len() - 1 && *base == m.log_end),
                "segment {base} does not start at a batch ({bases:?})"
            );
        }
        // (A segment wholly below the log start may remain after a truncation, as in Kafka,
        // until the next retention pass.)

        // Everything from the log start to the log end reads back, batch for batch.
        let mut offset = m.log_start;
        let mut got = Vec::new();
        while offset < m.log_end {
            let bytes = log
                .read(offset, 1 << 20, None, true)
                .unwrap()
                .unwrap_or_else(|| panic!("read({offset}) below the log end {}", m.log_end))
                .read_to_vec()
                .unwrap();
            let spans = batch_spans(&bytes);
            assert!(spans[0].0 <= offset && offset <= spans[0].1);
            offset = spans.last().unwrap().1 + 1;
            got.extend_from_slice(&bytes);
        }
        assert_same_bytes(&got, &m.bytes_from(m.log_start), "log contents");
        assert!(log.read(m.log_end, 1000, None, true).unwrap().is_none());

        if let Some(last) = m.batches.last().filter(|b| b.last >= m.log_start) {
            assert_eq!(log.latest_epoch(), Some(last.epoch), "latest leader epoch");
        }

        if deep {
            for b in &m.batches {
                for offset in [b.base, b.last, m.log_start] {
                    if offset < m.log_start || offset < b.base || offset > b.last {
                        continue;
                    }
                    let one = log
                        .read(offset, 1, None, true)
                        .unwrap()
                        .expect("a batch")
                        .read_to_vec()
                        .unwrap();
                    assert_same_bytes(&one, &b.bytes, &format!("read({offset}, 1 byte)"));
                }
            }
            if m.log_start > 0 {
                assert!(matches!(
                    log.read(m.log_start - 1, 1000, None, true),
                    Err(LogError::OffsetOutOfRange { .. })
                ));
            }
            assert!(matches!(
                log.read(m.log_end + 1, 1000, None, true),
                Err(LogError::OffsetOutOfRange { .. })
            ));
        }
    }
}

fn run(settings: Settings, ops: &[Op]) {
    let mut harness = Harness::new(settings);
    harness.check(true);
    for op in ops {
        harness.apply(op);
        let deep = !matches!(
            op,
            Op::Append { .. } | Op::Read { .. } | Op::OffsetForTimestamp(_)
        );
        harness.check(deep);
    }
    // Whatever happened, a final clean reopen and a crash reopen both give the same log.
    harness.reopen(Reopen::Clean);
    harness.check(true);
    harness.reopen(Reopen::Crash);
    harness.check(true);
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn log_matches_model(settings in settings(), ops in prop::collection::vec(op(), 1..60)) {
        run(settings, &ops);
    }
}

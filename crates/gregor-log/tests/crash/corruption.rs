//! The corruption half of the `crash` tests: a closed log damaged on purpose (torn tails,
//! overwritten bytes, damaged or missing indexes) must open as exactly the batches before the
//! first damaged one, with reads, timestamp lookups and appends working.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use gregor_log::{Log, LogConfig};
use gregor_protocol::batch::{BatchIter, RecordBatch, RecordBatchBuilder, RecordBatchMut};

use super::{
    CODECS, Rng, base_seed, check_epochs, check_point_read, env_flag, now_ms, open, read_all,
    scan_segment_files, set_len, value,
};

fn corruption_config() -> LogConfig {
    LogConfig::from_pairs([
        ("segment.bytes", "12000"),
        ("index.interval.bytes", "200"),
        ("segment.index.bytes", "800"),
    ])
    .unwrap()
}

/// A batch of the pristine log and where it is stored.
struct Stored {
    bytes: Vec<u8>,
    last: i64,
    segment: usize,
    position: u64,
    /// `(offset, timestamp)` of each record.
    records: Vec<(i64, i64)>,
}

/// The undamaged log every corruption case starts from.
struct Pristine {
    dir: PathBuf,
    /// Base offset of each segment, oldest first.
    segments: Vec<i64>,
    batches: Vec<Stored>,
}

impl Pristine {
    fn file(&self, dir: &Path, segment: usize, extension: &str) -> PathBuf {
        dir.join(format!("{:020}.{extension}", self.segments[segment]))
    }

    /// Index (in `batches`) of the first batch of `segment` ending after byte `cut`.
    fn first_ending_after(&self, segment: usize, cut: u64) -> usize {
        self.batches
            .iter()
            .position(|b| {
                b.segment > segment
                    || (b.segment == segment && b.position + b.bytes.len() as u64 > cut)
            })
            .unwrap_or(self.batches.len())
    }

    fn last_offset_of(&self, segment: usize) -> i64 {
        self.batches
            .iter()
            .filter(|b| b.segment == segment)
            .map(|b| b.last)
            .max()
            .unwrap()
    }
}

/// Batches with varied codecs and sizes; record timestamps mostly rise with `i` but jitter,
/// and a few spike far ahead, so a segment's largest timestamp is often not its last.
fn corruption_batch(rng: &mut Rng, i: i64) -> Vec<u8> {
    let codec = CODECS[rng.below(5) as usize];
    let count = if rng.one_in(12) {
        10 + rng.below(30)
    } else {
        1 + rng.below(6)
    };
    let mut builder = RecordBatchBuilder::new(0, codec);
    for r in 0..count as i64 {
        let mut timestamp = 1_000_000 + i * 100 + r * 5 + rng.range(-250, 250);
        if rng.one_in(40) {
            timestamp += 60_000;
        }
        let len = rng.range(0, 400) as usize;
        let value = value(rng, len);
        let key = format!("k{}", rng.below(50));
        builder.append(r, timestamp, Some(key.as_bytes()), Some(&value), &[]);
    }
    builder.build().unwrap()
}

fn records_of(bytes: &[u8]) -> Vec<(i64, i64)> {
    let batch = RecordBatch::parse(bytes).unwrap();
    let base_timestamp = batch.base_timestamp();
    batch
        .records()
        .unwrap()
        .iter()
        .map(|r| (r.offset(batch.base_offset()), r.timestamp(base_timestamp)))
        .collect()
}

fn build_pristine(dir: PathBuf, rng: &mut Rng) -> Pristine {
    let log = open(&dir, corruption_config(), 0, false, "pristine");
    let mut appended = Vec::new();
    for i in 0..240 {
        let epoch = match i {
            0..80 => 1,
            80..150 => 2,
            _ => 5,
        };
        let mut bytes = corruption_batch(rng, i);
        let info = log.append_as_leader(&mut bytes, epoch, now_ms()).unwrap();
        log.flush_if_required(&info, now_ms()).unwrap();
        appended.push(bytes);
    }
    log.close(now_ms()).unwrap();
    drop(log);
    let segments: Vec<i64> = {
        let mut s: Vec<i64> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .map(|p| p.file_stem().unwrap().to_str().unwrap().parse().unwrap())
            .collect();
        s.sort();
        s
    };
    assert!(segments.len() >= 6, "{segments:?}");
    let mut batches = Vec::new();
    for (segment, base) in segments.iter().enumerate() {
        let bytes = std::fs::read(dir.join(format!("{base:020}.log"))).unwrap();
        let mut position = 0;
        for batch in BatchIter::new(&bytes) {
            let batch = batch.unwrap();
            assert!(batch.as_bytes() == appended[batches.len()]);
            batches.push(Stored {
                bytes: batch.as_bytes().to_vec(),
                last: batch.last_offset(),
                segment,
                position,
                records: records_of(batch.as_bytes()),
            });
            position += batch.size() as u64;
        }
    }
    assert_eq!(batches.len(), appended.len());
    Pristine {
        dir,
        segments,
        batches,
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// How a case damaged its copy of the log.
enum Damage {
    /// Batches from this one (an index into [`Pristine::batches`]) on must be gone; recovery
    /// must start at or before `max_recovery_point` to see the damage.
    Log {
        first_damaged: usize,
        max_recovery_point: i64,
    },
    /// Only an index file of `segment`: every batch must survive.
    Index {
        segment: usize,
        /// The damage is of a kind a lazy load's sanity check is meant to catch (a missing
        /// or misaligned file) or harmless (an offset index cut between entries). Other damage
        /// (entries overwritten in place) is only caught when recovery rebuilds the indexes.
        lazily_detectable: bool,
    },
}

/// Damages the log in `dir` (a copy of the pristine one) and says what should survive.
fn damage(
    pristine: &Pristine,
    dir: &Path,
    index_only: bool,
    rng: &mut Rng,
    what: &mut String,
) -> Damage {
    let n = pristine.segments.len();
    let log_end = pristine.batches.last().unwrap().last + 1;
    match if index_only { 4 } else { rng.below(6) } {
        0 => {
            // A torn tail: the active segment cut at any byte.
            let path = pristine.file(dir, n - 1, "log");
            let len = std::fs::metadata(&path).unwrap().len();
            let cut = rng.below(len + 1);
            set_len(&path, cut);
            *what = format!("active segment truncated to {cut} of {len} bytes");
            Damage::Log {
                first_damaged: pristine.first_ending_after(n - 1, cut),
                max_recovery_point: log_end,
            }
        }
        1 => {
            // A sealed segment cut inside a batch (a cut between batches looks like compaction).
            let segment = rng.below(n as u64 - 1) as usize;
            let path = pristine.file(dir, segment, "log");
            let len = std::fs::metadata(&path).unwrap().len();
            let boundaries: Vec<u64> = pristine
                .batches
                .iter()
                .filter(|b| b.segment == segment)
                .map(|b| b.position)
                .collect();
            let cut = loop {
                let cut = rng.range(1, len as i64 - 1) as u64;
                if !boundaries.contains(&cut) {
                    break cut;
                }
            };
            set_len(&path, cut);
            *what = format!("segment {segment} truncated to {cut} of {len} bytes");
            Damage::Log {
                first_damaged: pristine.first_ending_after(segment, cut),
                max_recovery_point: pristine.last_offset_of(segment),
            }
        }
        2 | 3 => {
            // Bytes overwritten anywhere in a segment. The base offset and leader epoch fields
            // are outside Kafka's CRC; damage confined to them cannot be detected, so such
            // positions are drawn again.
            let segment = rng.below(n as u64) as usize;
            let path = pristine.file(dir, segment, "log");
            let mut bytes = std::fs::read(&path).unwrap();
            let (position, garbage, first_damaged) = loop {
                let position = rng.below(bytes.len() as u64) as usize;
                let count = (1 + rng.below(16) as usize).min(bytes.len() - position);
                let garbage = rng.bytes(count);
                let changed: Vec<u64> = (0..count)
                    .filter(|&i| garbage[i] != bytes[position + i])
                    .map(|i| (position + i) as u64)
                    .collect();
                let Some(&first) = changed.first() else {
                    continue;
                };
                let damaged = pristine.first_ending_after(segment, first);
                let batch = &pristine.batches[damaged];
                let end = batch.position + batch.bytes.len() as u64;
                let detectable = changed
                    .iter()
                    .filter(|&&p| p < end)
                    .any(|&p| matches!(p - batch.position, 8..12 | 16..));
                if detectable {
                    break (position, garbage, damaged);
                }
            };
            bytes[position..position + garbage.len()].copy_from_slice(&garbage);
            std::fs::write(&path, &bytes).unwrap();
            *what = format!(
                "segment {segment}: {} bytes overwritten at {position}",
                garbage.len()
            );
            Damage::Log {
                first_damaged,
                max_recovery_point: pristine.last_offset_of(segment),
            }
        }
        _ => {
            let segment = rng.below(n as u64) as usize;
            let (extension, entry) = if rng.one_in(2) {
                ("index", 8)
            } else {
                ("timeindex", 12)
            };
            let path = pristine.file(dir, segment, extension);
            let bytes = std::fs::read(&path).unwrap();
            let len = bytes.len() as u64;
            let op = match rng.below(7) {
                op @ (1 | 3 | 4 | 6) if len > 0 => op,
                // A time index cut between entries is a valid, shorter index whose last entry (the
                // segment's largest timestamp) is gone: nothing short of a scan of the log can
                // tell, and Kafka does not scan either. An offset index cut there is harmless.
                2 if len >= entry && extension == "index" => 2,
                5 => 5,
                _ => 0,
            };
            let mut lazily_detectable = false;
            let detail = match op {
                0 => {
                    lazily_detectable = true;
                    std::fs::remove_file(&path).unwrap();
                    "deleted".to_string()
                }
                1 => {
                    // Whole-entry cuts of a time index are op 2's business (excluded there).
                    let cut = loop {
                        let cut = rng.below(len);
                        if cut % entry != 0 || extension == "index" {
                            break cut;
                        }
                    };
                    set_len(&path, cut);
                    lazily_detectable = true;
                    format!("truncated to {cut} of {len} bytes")
                }
                2 => {
                    let cut = entry * rng.below(len / entry);
                    set_len(&path, cut);
                    lazily_detectable = true;
                    format!("truncated to {cut} of {len} bytes (whole entries)")
                }
                3 => {
                    let mut damaged = bytes.clone();
                    while damaged == bytes {
                        let position = rng.below(len) as usize;
                        let count = (1 + rng.below(8) as usize).min(bytes.len() - position);
                        damaged[position..position + count].copy_from_slice(&rng.bytes(count));
                    }
                    std::fs::write(&path, &damaged).unwrap();
                    "bytes overwritten".to_string()
                }
                4 => {
                    std::fs::write(&path, vec![0u8; bytes.len()]).unwrap();
                    "zeroed".to_string()
                }
                5 => {
                    let mut damaged = bytes.clone();
                    let extra = rng.range(1, 40) as usize;
                    damaged.extend(rng.bytes(extra));
                    lazily_detectable = extra as u64 % entry != 0;
                    std::fs::write(&path, &damaged).unwrap();
                    format!("{extra} garbage bytes appended")
                }
                _ => {
                    std::fs::write(&path, rng.bytes(bytes.len())).unwrap();
                    "replaced with garbage".to_string()
                }
            };
            *what = format!("segment {segment} .{extension} {detail}");
            Damage::Index {
                segment,
                lazily_detectable,
            }
        }
    }
}

/// Checks an opened log against the batches it should hold (`records` are theirs).
fn check_log(
    log: &Log,
    dir: &Path,
    batches: &[&[u8]],
    records: &[(i64, i64)],
    rng: &mut Rng,
    ctx: &str,
) {
    let leo = batches
        .last()
        .map_or(0, |b| RecordBatch::parse(b).unwrap().next_offset());
    assert_eq!(log.log_end_offset(), leo, "{ctx}: log end offset");
    assert_eq!(log.log_start_offset(), 0, "{ctx}: log start offset");
    let (on_disk, _) = scan_segment_files(dir, 0, ctx);
    assert!(
        on_disk.len() == batches.len() && on_disk.iter().zip(batches).all(|(a, b)| a == b),
        "{ctx}: the files hold {} batches, not the {} expected",
        on_disk.len(),
        batches.len()
    );
    let via_log = read_all(log, ctx);
    assert!(
        via_log.len() == batches.len() && via_log.iter().zip(batches).all(|(a, b)| a == b),
        "{ctx}: Log::read returned other batches"
    );
    for bytes in batches {
        let batch = RecordBatch::parse(bytes).unwrap();
        let mid = rng.range(batch.base_offset(), batch.last_offset());
        for offset in [batch.base_offset(), mid, batch.last_offset()] {
            check_point_read(log, offset, bytes, ctx);
        }
    }
    // ListOffsets by timestamp: the first record (by offset) at or after the target.
    let (min, max) = records
        .iter()
        .fold((i64::MAX, i64::MIN), |(lo, hi), &(_, ts)| {
            (lo.min(ts), hi.max(ts))
        });
    let mut targets = vec![i64::MIN, -1, 0, i64::MAX];
    if !records.is_empty() {
        targets.extend([min - 1, min, max, max + 1]);
    }
    for _ in 0..24 {
        if !records.is_empty() {
            targets.push(records[rng.below(records.len() as u64) as usize].1);
            targets.push(rng.range(min - 100, max + 100));
        }
    }
    for target in targets {
        let expected = records
            .iter()
            .find(|&&(_, ts)| ts >= target)
            .map(|&(offset, ts)| (ts, offset));
        let got = log
            .offset_for_timestamp(target)
            .unwrap_or_else(|e| panic!("{ctx}: offset_for_timestamp({target}) failed: {e}"));
        assert_eq!(got, expected, "{ctx}: offset_for_timestamp({target})");
    }
    let expected_max = records
        .iter()
        .filter(|&&(_, ts)| ts == max)
        .map(|&(offset, ts)| (ts, offset))
        .next();
    assert_eq!(
        log.max_timestamp_offset().unwrap(),
        expected_max,
        "{ctx}: max_timestamp_offset"
    );
    let owned: Vec<Vec<u8>> = batches.iter().map(|b| b.to_vec()).collect();
    if let Err(e) = check_epochs(log, &owned) {
        panic!("{ctx}: {e}");
    }
}

/// Opens a damaged copy, checks it, appends, restarts cleanly and checks again.
fn run_case(
    pristine: &Pristine,
    dir: &Path,
    kept: usize,
    recovery_point: i64,
    clean: bool,
    rng: &mut Rng,
    ctx: &str,
) {
    let mut batches: Vec<&[u8]> = pristine.batches[..kept]
        .iter()
        .map(|b| b.bytes.as_slice())
        .collect();
    let mut records: Vec<(i64, i64)> = pristine.batches[..kept]
        .iter()
        .flat_map(|b| b.records.iter().copied())
        .collect();
    let log = open(dir, corruption_config(), recovery_point, clean, ctx);
    check_log(&log, dir, &batches, &records, rng, ctx);
    // Appends continue at the new log end, and survive a clean restart.
    let leo = log.log_end_offset();
    let mut extra = corruption_batch(rng, 1000);
    let info = log
        .append_as_leader(&mut extra, 9, now_ms())
        .unwrap_or_else(|e| panic!("{ctx}: append after recovery failed: {e}"));
    assert_eq!(info.first_offset, leo, "{ctx}: append after recovery");
    log.flush_if_required(&info, now_ms()).unwrap();
    check_point_read(&log, leo, &extra, ctx);
    log.close(now_ms()).unwrap();
    drop(log);
    batches.push(&extra);
    records.extend(records_of(&extra));
    let ctx = format!("{ctx}, after an append and a clean restart");
    let log = open(dir, corruption_config(), info.last_offset + 1, true, &ctx);
    check_log(&log, dir, &batches, &records, rng, &ctx);
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Runs `cases` corruption cases on copies of one pristine log. With `index_only`, every case
/// damages an index in place and opens the log so that the damaged indexes load lazily.
fn corruption_cases(name: &str, cases: usize, index_only: bool) {
    let seed = base_seed();
    let started = Instant::now();
    let root = tempfile::tempdir().unwrap();
    let pristine = build_pristine(root.path().join("pristine"), &mut Rng::new(seed));
    let log_end = pristine.batches.last().unwrap().last + 1;
    let work = root.path().join("work");
    let (mut log_opens, mut recovered_index_opens, mut lazy_index_opens) = (0, 0, 0);
    for case in 0..cases {
        let case_seed = seed ^ (case as u64).wrapping_mul(0x9E37_79B9) ^ index_only as u64;
        let mut rng = Rng::new(case_seed.wrapping_add(1));
        // Index damage is opened twice: with the damaged segment recovered after a crash, and
        // with its indexes loaded lazily (after a clean shutdown, or after a crash whose
        // recovery point lies past the segment).
        for variant in 0..2 {
            copy_dir(&pristine.dir, &work);
            let mut what = String::new();
            // The same damage for both variants.
            let damage = damage(
                &pristine,
                &work,
                index_only,
                &mut Rng::new(case_seed),
                &mut what,
            );
            let (kept, recovery_point, clean) = match damage {
                Damage::Log {
                    first_damaged,
                    max_recovery_point,
                } => {
                    if variant > 0 {
                        break;
                    }
                    log_opens += 1;
                    let damaged_segment = pristine
                        .batches
                        .get(first_damaged)
                        .map_or(pristine.segments.len() - 1, |b| b.segment);
                    let recovery_point = match rng.below(3) {
                        0 => 0,
                        1 => pristine.segments[damaged_segment],
                        _ => rng.range(0, max_recovery_point),
                    };
                    (first_damaged, recovery_point, false)
                }
                Damage::Index {
                    segment,
                    lazily_detectable,
                } => {
                    let base = pristine.segments[segment];
                    let lazy = index_only || variant == 1;
                    let (recovery_point, clean) = if !lazy {
                        recovered_index_opens += 1;
                        (rng.range(0, base), false)
                    } else if !lazily_detectable && !index_only {
                        continue;
                    } else if segment + 1 < pristine.segments.len() && rng.one_in(2) {
                        lazy_index_opens += 1;
                        (
                            rng.range(pristine.last_offset_of(segment) + 1, log_end),
                            false,
                        )
                    } else {
                        lazy_index_opens += 1;
                        (log_end, true)
                    };
                    (pristine.batches.len(), recovery_point, clean)
                }
            };
            let ctx = format!(
                "seed {seed} case {case}.{variant}: {what}; opened after a {} with recovery \
                 point {recovery_point}, expecting {kept} of {} batches",
                if clean { "clean shutdown" } else { "crash" },
                pristine.batches.len()
            );
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_case(
                    &pristine,
                    &work,
                    kept,
                    recovery_point,
                    clean,
                    &mut rng,
                    &ctx,
                )
            }));
            if let Err(payload) = result {
                panic!("{ctx}: {}", panic_message(&*payload));
            }
        }
    }
    eprintln!(
        "{name}: seed {seed}, {cases} cases on {} segments: {log_opens} opens with a damaged \
         .log, {recovered_index_opens} with damaged indexes recovered, {lazy_index_opens} with \
         damaged indexes loaded lazily; {:.1?}",
        pristine.segments.len(),
        started.elapsed()
    );
}

/// Damage a crash or a failing disk leaves: recovery keeps exactly the batches before the
/// first damaged one; damaged indexes are rebuilt by recovery, and missing or misaligned ones
/// also when loaded lazily after a clean shutdown.
#[test]
fn corruption_keeps_a_valid_prefix() {
    let cases = if env_flag("GREGOR_SOAK") { 3000 } else { 150 };
    corruption_cases("corruption_keeps_a_valid_prefix", cases, false);
}

/// Index entries overwritten in place (garbage, zeros) in a segment whose indexes load lazily
/// (after a clean shutdown, or past the recovery point). The lazy load's sanity check (aligned
/// length, ordered entries, a non-empty time index) lets through damage that keeps entries in
/// order, e.g. a one-entry `.timeindex` zeroed (the segment's max timestamp becomes 0, so
/// `offset_for_timestamp` skips it) or an `.index` entry moved to a later batch boundary
/// (`read` then returns a later batch than the one asked for). Kafka has the same gap; closing
/// it needs index entries checked against the log when used (the batch at an entry's position
/// must end at the entry's offset; a time entry's batch must carry its timestamp).
#[test]
fn damaged_indexes_loaded_lazily_are_rebuilt() {
    let cases = if env_flag("GREGOR_SOAK") { 3000 } else { 300 };
    corruption_cases("damaged_indexes_loaded_lazily_are_rebuilt", cases, true);
}

/// A leader writes a batch of a new epoch, then dies before `leader-epoch-checkpoint` records
/// the epoch (`append_as_leader` writes the batch first). Recovery keeps the batch, so it must
/// also restore its epoch, as Kafka's `LogSegment.recover` does by assigning every recovered
/// batch's epoch to the cache. Without that, OffsetForLeaderEpoch for the old epoch answers the
/// log end instead of where the new epoch began, and a follower keeps a divergent suffix.
#[test]
fn recovery_restores_leader_epochs_of_recovered_batches() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("crash-0");
    let log = open(&dir, LogConfig::default(), 0, false, "first run");
    for i in 0..3 {
        let mut batch = corruption_batch(&mut Rng::new(i), i as i64);
        let info = log.append_as_leader(&mut batch, 1, now_ms()).unwrap();
        log.flush_if_required(&info, now_ms()).unwrap();
    }
    let leo = log.log_end_offset();
    drop(log);
    // The batch the epoch-2 leader wrote before it was killed.
    let mut batch = corruption_batch(&mut Rng::new(3), 3);
    let mut patch = RecordBatchMut::parse(&mut batch).unwrap();
    patch.set_base_offset(leo);
    patch.set_partition_leader_epoch(2);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("00000000000000000000.log"))
        .unwrap();
    file.write_all(&batch).unwrap();
    drop(file);
    let log = open(&dir, LogConfig::default(), 0, false, "recovery");
    assert_eq!(
        log.log_end_offset(),
        RecordBatch::parse(&batch).unwrap().next_offset()
    );
    assert_eq!(log.latest_epoch(), Some(2));
    assert_eq!(log.end_offset_for_epoch(1), (1, leo));
}

//! The files a [`Log`] leaves on disk, checked by an independent reader of Kafka's on-disk
//! format.
//!
//! Nothing here uses gregor-log's or gregor-protocol's parsing code: the reader below decodes
//! record batches v2, `.index`, `.timeindex` and `leader-epoch-checkpoint` by hand from the
//! format description (Kafka's `DefaultRecordBatch`, `OffsetIndex`, `TimeIndex`,
//! `LeaderEpochCheckpointFile`), with CRC-32C from the `crc32c` crate. gregor-protocol's
//! builder only produces the batches a client would send.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use gregor_log::{LoadOptions, Log, LogConfig, TopicPartition};
use gregor_protocol::batch::{Compression, RecordBatchBuilder};

// ---------------------------------------------------------------------------------------------
// The independent reader
// ---------------------------------------------------------------------------------------------

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(b[at..at + 2].try_into().unwrap())
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

/// Kafka's varint/varlong: zigzag-encoded, 7 bits per byte, least significant group first.
fn varlong(b: &[u8], at: &mut usize) -> i64 {
    let mut raw: u64 = 0;
    for shift in (0..70).step_by(7) {
        let byte = b[*at];
        *at += 1;
        raw |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return (raw >> 1) as i64 ^ -((raw & 1) as i64);
        }
    }
    panic!("varint longer than 10 bytes");
}

/// Skips a varint-length-prefixed byte string (`-1` = null).
fn skip_bytes(b: &[u8], at: &mut usize) {
    let len = varlong(b, at);
    assert!(len >= -1, "negative length {len}");
    if len > 0 {
        *at += len as usize;
    }
}

/// One v2 record batch as found in a `.log` file.
#[derive(Debug, Clone)]
struct DiskBatch {
    position: u64,
    size: u64,
    base_offset: i64,
    last_offset: i64,
    leader_epoch: i32,
    attributes: i16,
    base_timestamp: i64,
    max_timestamp: i64,
}

impl DiskBatch {
    fn codec(&self) -> i16 {
        self.attributes & 0x07
    }

    fn log_append_time(&self) -> bool {
        self.attributes & 0x08 != 0
    }
}

/// Parses a whole `.log` file: `baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 |
/// magic i8 | crc u32 | attributes i16 | lastOffsetDelta i32 | baseTimestamp i64 |
/// maxTimestamp i64 | producerId i64 | producerEpoch i16 | baseSequence i32 |
/// recordsCount i32 | records`. Checks magic, the CRC-32C of attributes..end, and for
/// uncompressed batches every record's framing, offset delta and timestamp.
fn parse_log(bytes: &[u8], what: &str) -> Vec<DiskBatch> {
    let mut batches = Vec::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        assert!(bytes.len() - pos >= 61, "{what}: torn header at {pos}");
        let length = i32_at(bytes, pos + 8);
        assert!(length >= 49, "{what}: batchLength {length} at {pos}");
        let size = 12 + length as usize;
        assert!(pos + size <= bytes.len(), "{what}: torn batch at {pos}");
        let b = &bytes[pos..pos + size];
        assert_eq!(b[16], 2, "{what}: magic at {pos}");
        assert_eq!(
            crc32c::crc32c(&b[21..]),
            u32_at(b, 17),
            "{what}: CRC-32C of the batch at {pos}"
        );
        let attributes = i16_at(b, 21);
        let last_offset_delta = i32_at(b, 23);
        let base_timestamp = i64_at(b, 27);
        let max_timestamp = i64_at(b, 35);
        let records_count = i32_at(b, 57);
        assert!(records_count > 0 && last_offset_delta == records_count - 1);
        assert!(attributes & 0x07 <= 4, "{what}: unknown codec");
        if attributes & 0x07 == 0 {
            // Uncompressed: walk the records.
            let mut at = 61;
            let mut largest = i64::MIN;
            for i in 0..records_count {
                let record_len = varlong(b, &mut at) as usize;
                let end = at + record_len;
                at += 1; // record attributes
                let ts_delta = varlong(b, &mut at);
                let offset_delta = varlong(b, &mut at);
                assert_eq!(offset_delta, i64::from(i), "{what}: offset delta");
                largest = largest.max(base_timestamp + ts_delta);
                skip_bytes(b, &mut at); // key
                skip_bytes(b, &mut at); // value
                let headers = varlong(b, &mut at);
                for _ in 0..headers {
                    skip_bytes(b, &mut at);
                    skip_bytes(b, &mut at);
                }
                assert_eq!(at, end, "{what}: record {i} length");
            }
            assert_eq!(at, size, "{what}: bytes after the last record");
            if attributes & 0x08 == 0 {
                assert_eq!(largest, max_timestamp, "{what}: maxTimestamp");
            }
        }
        let base_offset = i64_at(b, 0);
        batches.push(DiskBatch {
            position: pos as u64,
            size: size as u64,
            base_offset,
            last_offset: base_offset + i64::from(last_offset_delta),
            leader_epoch: i32_at(b, 12),
            attributes,
            base_timestamp,
            max_timestamp,
        });
        pos += size;
    }
    batches
}

/// `.index` entries: `(relativeOffset, position)`.
type OffsetEntries = Vec<(u32, u32)>;
/// `.timeindex` entries: `(timestamp, relativeOffset)`.
type TimeEntries = Vec<(i64, u32)>;

/// `.index`: 8-byte entries `relativeOffset u32 | position u32`.
fn parse_offset_index(bytes: &[u8], what: &str) -> OffsetEntries {
    assert_eq!(bytes.len() % 8, 0, "{what}: length {}", bytes.len());
    bytes
        .chunks_exact(8)
        .map(|e| (u32_at(e, 0), u32_at(e, 4)))
        .collect()
}

/// `.timeindex`: 12-byte entries `timestamp i64 | relativeOffset u32`.
fn parse_time_index(bytes: &[u8], what: &str) -> TimeEntries {
    assert_eq!(bytes.len() % 12, 0, "{what}: length {}", bytes.len());
    bytes
        .chunks_exact(12)
        .map(|e| (i64_at(e, 0), u32_at(e, 8)))
        .collect()
}

/// `leader-epoch-checkpoint`: `0\n<count>\n` then `<epoch> <startOffset>\n` per entry.
fn parse_epoch_checkpoint(text: &str) -> Vec<(i32, i64)> {
    assert!(text.ends_with('\n'), "{text:?}");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("0"), "version line");
    let count: usize = lines.next().unwrap().parse().unwrap();
    let entries: Vec<(i32, i64)> = lines
        .map(|l| {
            let (e, o) = l.split_once(' ').unwrap();
            (e.parse().unwrap(), o.parse().unwrap())
        })
        .collect();
    assert_eq!(entries.len(), count, "{text:?}");
    entries
}

/// The files of a partition directory, by segment base offset.
#[derive(Debug, Default)]
struct DirListing {
    segments: BTreeMap<i64, BTreeSet<String>>,
    others: BTreeSet<String>,
}

fn list_partition_dir(dir: &Path) -> DirListing {
    let mut listing = DirListing::default();
    for entry in fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        match name.split_once('.') {
            // Producer snapshots are named by offset too, but belong to the partition.
            Some((_, "snapshot")) => {
                listing.others.insert(name);
            }
            Some((stem, ext)) if stem.len() == 20 && stem.bytes().all(|c| c.is_ascii_digit()) => {
                assert!(
                    ["log", "index", "timeindex", "txnindex"].contains(&ext),
                    "unexpected segment file {name}"
                );
                listing
                    .segments
                    .entry(stem.parse().unwrap())
                    .or_default()
                    .insert(ext.to_string());
            }
            _ => {
                assert!(
                    ["leader-epoch-checkpoint", "partition.metadata"].contains(&name.as_str()),
                    "unexpected file {name}"
                );
                listing.others.insert(name);
            }
        }
    }
    listing
}

// ---------------------------------------------------------------------------------------------
// Checking one segment
// ---------------------------------------------------------------------------------------------

/// What a segment's files must hold, given its batches: Kafka's `LogSegment.append`, applied
/// per batch, adds an offset index entry (the batch's last offset → its position) once more
/// than `index.interval.bytes` were written since the previous one, and beside it a time index
/// entry (max timestamp so far → last offset of the batch that first reached it) if that
/// timestamp grew; when the segment stops being active a final time index entry holds its
/// largest timestamp.
fn expected_indexes(
    batches: &[DiskBatch],
    base: i64,
    interval: u64,
    sealed: bool,
) -> (OffsetEntries, TimeEntries) {
    let mut offsets = OffsetEntries::new();
    let mut times = TimeEntries::new();
    let mut max: Option<(i64, i64)> = None;
    let mut since = 0u64;
    let rel = |offset: i64| (offset - base) as u32;
    for b in batches {
        if max.is_none_or(|(ts, _)| b.max_timestamp > ts) {
            max = Some((b.max_timestamp, b.last_offset));
        }
        if since > interval {
            offsets.push((rel(b.last_offset), b.position as u32));
            let (ts, off) = max.unwrap();
            if times.last().is_none_or(|&(t, _)| ts > t) {
                times.push((ts, rel(off)));
            }
            since = 0;
        }
        since += b.size;
    }
    if sealed {
        if let Some((ts, off)) = max {
            if times.last().is_none_or(|&(t, _)| ts > t) {
                times.push((ts, rel(off)));
            }
        }
    }
    (offsets, times)
}

/// Checks a sealed (rolled or closed) segment's three files; returns its batches.
fn check_sealed_segment(dir: &Path, base: i64, interval: u64) -> Vec<DiskBatch> {
    let stem = format!("{base:020}");
    let what = format!("{}/{stem}", dir.display());
    let log = parse_log(&fs::read(dir.join(format!("{stem}.log"))).unwrap(), &what);
    assert!(!log.is_empty(), "{what}: empty segment");
    assert_eq!(log[0].base_offset, base, "{what}: first batch vs file name");
    for w in log.windows(2) {
        assert_eq!(w[1].base_offset, w[0].last_offset + 1, "{what}: offset gap");
    }
    let by_position: BTreeMap<u64, &DiskBatch> = log.iter().map(|b| (b.position, b)).collect();
    let log_size: u64 = log.iter().map(|b| b.size).sum();

    // .index: trimmed, entries at batch starts, strictly increasing.
    let index = parse_offset_index(&fs::read(dir.join(format!("{stem}.index"))).unwrap(), &what);
    for (i, &(rel, position)) in index.iter().enumerate() {
        assert!(
            position > 0,
            "{what}: index entry {i} at position 0 (zero padding?)"
        );
        let batch = by_position
            .get(&u64::from(position))
            .unwrap_or_else(|| panic!("{what}: index entry {i} not at a batch start"));
        assert_eq!(
            batch.last_offset,
            base + i64::from(rel),
            "{what}: index entry {i} is not the batch's last offset"
        );
        if i > 0 {
            assert!(rel > index[i - 1].0 && position > index[i - 1].1);
        }
    }
    // Roughly one entry per index.interval.bytes of log.
    let biggest = log.iter().map(|b| b.size).max().unwrap();
    assert!(index.len() as u64 <= log_size / (interval + 1));
    assert!(index.len() as u64 + 2 >= log_size / (interval + biggest));

    // .timeindex: trimmed, strictly increasing, each entry the running max at a batch's last
    // offset, the last one the segment's largest timestamp.
    let time_index = parse_time_index(
        &fs::read(dir.join(format!("{stem}.timeindex"))).unwrap(),
        &what,
    );
    for (i, &(ts, rel)) in time_index.iter().enumerate() {
        let offset = base + i64::from(rel);
        let at = log
            .iter()
            .position(|b| b.last_offset == offset)
            .unwrap_or_else(|| panic!("{what}: time index entry {i} not a batch's last offset"));
        assert_eq!(log[at].max_timestamp, ts, "{what}: time index entry {i}");
        let max_so_far = log[..=at].iter().map(|b| b.max_timestamp).max().unwrap();
        assert_eq!(
            ts, max_so_far,
            "{what}: time index entry {i} is not the max so far"
        );
        assert!(
            log[..at].iter().all(|b| b.max_timestamp < ts),
            "{what}: time index entry {i} does not point at the first batch with its timestamp"
        );
        if i > 0 {
            assert!(ts > time_index[i - 1].0 && rel >= time_index[i - 1].1);
        }
    }
    let largest = log.iter().map(|b| b.max_timestamp).max().unwrap();
    assert_eq!(
        time_index.last().map(|e| e.0),
        Some(largest),
        "{what}: last time index entry vs largest timestamp"
    );

    // And exactly Kafka's entries.
    let (offsets, times) = expected_indexes(&log, base, interval, true);
    assert_eq!(index, offsets, "{what}: offset index entries");
    assert_eq!(time_index, times, "{what}: time index entries");
    log
}

/// Checks a whole partition directory after a clean close; returns every batch in order.
fn check_closed_partition(dir: &Path, interval: u64) -> Vec<DiskBatch> {
    let listing = list_partition_dir(dir);
    let mut all: Vec<DiskBatch> = Vec::new();
    for (base, files) in &listing.segments {
        for ext in ["log", "index", "timeindex"] {
            assert!(files.contains(ext), "segment {base} has no .{ext}");
        }
        let batches = check_sealed_segment(dir, *base, interval);
        if let Some(prev) = all.last() {
            assert_eq!(
                batches[0].base_offset,
                prev.last_offset + 1,
                "offsets not contiguous across segments at {base}"
            );
        }
        all.extend(batches);
    }
    all
}

// ---------------------------------------------------------------------------------------------
// Writing logs to check
// ---------------------------------------------------------------------------------------------

const T0: i64 = 1_700_000_000_000;

/// The `i`th batch of the workload: 1–7 records of 0–250 bytes, codecs in rotation, timestamps
/// rising overall but going back now and then (within batches and between them), or all the
/// same when `flat` (so the time index stays small and the offset index fills up first).
fn workload_batch(i: usize, flat: bool) -> Vec<u8> {
    let codecs = [
        Compression::None,
        Compression::None,
        Compression::Gzip,
        Compression::None,
        Compression::Snappy,
        Compression::Lz4,
        Compression::None,
        Compression::Zstd,
    ];
    let mut builder = RecordBatchBuilder::new(0, codecs[i % codecs.len()]);
    let records = 1 + i % 7;
    let batch_ts = if flat {
        T0
    } else if i % 5 == 4 {
        T0 + i as i64 * 100 - 5_000
    } else {
        T0 + i as i64 * 100
    };
    for r in 0..records {
        let ts = if flat {
            T0
        } else {
            batch_ts + [0, 30, -20, 10][r % 4]
        };
        let value: Vec<u8> = (0..(i * 37 + r * 11) % 250)
            .map(|k| (k * 31 + i) as u8)
            .collect();
        let key = format!("key-{i}-{r}");
        builder.append(r as i64, ts, Some(key.as_bytes()), Some(&value), &[]);
    }
    builder.build().unwrap()
}

fn epoch_for(i: usize) -> i32 {
    match i {
        0..20 => 0,
        20..50 => 2,
        _ => 5,
    }
}

struct Partition {
    name: &'static str,
    segment_bytes: u64,
    index_interval_bytes: u64,
    segment_index_bytes: u64,
    flat_timestamps: bool,
}

impl Partition {
    fn config(&self) -> LogConfig {
        LogConfig::from_pairs([
            ("segment.bytes", self.segment_bytes.to_string().as_str()),
            (
                "index.interval.bytes",
                self.index_interval_bytes.to_string().as_str(),
            ),
            (
                "segment.index.bytes",
                self.segment_index_bytes.to_string().as_str(),
            ),
            ("retention.ms", "-1"),
        ])
        .unwrap()
    }
}

/// While a log is open, the active segment's indexes are preallocated to
/// `segment.index.bytes` (rounded down to whole entries) and every rolled segment's are
/// trimmed and complete.
fn check_open_partition(dir: &Path, p: &Partition, log: &Log) {
    let listing = list_partition_dir(dir);
    let bases: Vec<i64> = listing.segments.keys().copied().collect();
    assert_eq!(
        bases,
        log.segment_base_offsets(),
        "{}: segment files",
        p.name
    );
    let (active, rolled) = bases.split_last().unwrap();
    let stem = format!("{active:020}");
    let len = |ext: &str| {
        fs::metadata(dir.join(format!("{stem}.{ext}")))
            .unwrap()
            .len()
    };
    assert_eq!(len("index"), p.segment_index_bytes / 8 * 8, "{}", p.name);
    assert_eq!(
        len("timeindex"),
        p.segment_index_bytes / 12 * 12,
        "{}",
        p.name
    );
    for base in rolled {
        check_sealed_segment(dir, *base, p.index_interval_bytes);
    }
}

#[test]
fn segment_files_follow_kafka_layout() {
    let root = tempfile::tempdir().unwrap();
    let partitions = [
        // Rolls on segment.bytes; index sizes not a multiple of either entry size.
        Partition {
            name: "layout-0",
            segment_bytes: 3000,
            index_interval_bytes: 250,
            segment_index_bytes: 1001,
            flat_timestamps: false,
        },
        // Rolls because the time index fills up (7 regular entries + the final one).
        Partition {
            name: "layout-1",
            segment_bytes: 20_000,
            index_interval_bytes: 100,
            segment_index_bytes: 100,
            flat_timestamps: false,
        },
        // Rolls because the offset index fills up (12 entries).
        Partition {
            name: "layout-2",
            segment_bytes: 20_000,
            index_interval_bytes: 100,
            segment_index_bytes: 100,
            flat_timestamps: true,
        },
    ];
    for (n, p) in partitions.iter().enumerate() {
        let dir = root.path().join(p.name);
        let log = Log::open(
            dir.clone(),
            TopicPartition::new("layout", n as i32),
            p.config(),
            LoadOptions::new(T0),
        )
        .unwrap();
        let mut written = Vec::new();
        let mut epoch_starts = Vec::new();
        for i in 0..80 {
            let mut batch = workload_batch(i, p.flat_timestamps);
            let info = log.append_as_leader(&mut batch, epoch_for(i), T0).unwrap();
            if epoch_starts.last().is_none_or(|&(e, _)| e != epoch_for(i)) {
                epoch_starts.push((epoch_for(i), info.first_offset));
            }
            written.extend_from_slice(&batch);
            if i % 10 == 9 {
                check_open_partition(&dir, p, &log);
            }
        }
        assert!(
            log.segment_base_offsets().len() >= 4,
            "{}: {:?}",
            p.name,
            log.segment_base_offsets()
        );
        check_open_partition(&dir, p, &log);
        log.close(T0).unwrap();
        drop(log);

        let batches = check_closed_partition(&dir, p.index_interval_bytes);
        if p.segment_index_bytes == 100 {
            // The index this partition is meant to fill did fill, in several segments (the
            // time index keeps its last slot for the final entry: full one entry early).
            let (ext, entry, reserved) = if p.flat_timestamps {
                ("index", 8, 0)
            } else {
                ("timeindex", 12, 1)
            };
            let full = list_partition_dir(&dir)
                .segments
                .keys()
                .filter(|base| {
                    let path = dir.join(format!("{base:020}.{ext}"));
                    fs::metadata(path).unwrap().len() / entry
                        >= p.segment_index_bytes / entry - reserved
                })
                .count();
            assert!(full >= 3, "{}: {full} segments with a full .{ext}", p.name);
        }
        assert_eq!(batches.len(), 80);
        assert_eq!(batches[0].base_offset, 0);
        // The .log files are exactly the batches appended, in order.
        let mut on_disk = Vec::new();
        for base in list_partition_dir(&dir).segments.keys() {
            on_disk.extend(fs::read(dir.join(format!("{base:020}.log"))).unwrap());
        }
        assert!(on_disk == written, "{}: .log contents", p.name);
        let codecs: BTreeSet<i16> = batches.iter().map(DiskBatch::codec).collect();
        assert_eq!(codecs, BTreeSet::from([0, 1, 2, 3, 4]));
        for (i, b) in batches.iter().enumerate() {
            assert_eq!(b.leader_epoch, epoch_for(i), "{}: batch {i}", p.name);
            assert!(!b.log_append_time());
        }
        let checkpoint = fs::read_to_string(dir.join("leader-epoch-checkpoint")).unwrap();
        assert_eq!(parse_epoch_checkpoint(&checkpoint), epoch_starts);
        assert_eq!(
            checkpoint,
            format!(
                "0\n3\n0 0\n2 {}\n5 {}\n",
                epoch_starts[1].1, epoch_starts[2].1
            )
        );

        // Full recovery rebuilds every index exactly as appending wrote it (Kafka's
        // `LogSegment.recover` follows the same rule, final time index entry included).
        let before = snapshot(&dir);
        let options = LoadOptions {
            recovery_point: 0,
            log_start_offset: 0,
            had_clean_shutdown: false,
            now_ms: T0,
        };
        let log = Log::open(
            dir.clone(),
            TopicPartition::new("layout", n as i32),
            p.config(),
            options,
        )
        .unwrap();
        check_open_partition(&dir, p, &log);
        log.close(T0).unwrap();
        drop(log);
        let after = snapshot(&dir);
        assert_eq!(
            before.keys().collect::<Vec<_>>(),
            after.keys().collect::<Vec<_>>()
        );
        for (name, bytes) in &before {
            assert!(
                after[name] == *bytes,
                "{}/{name} changed by recovery",
                p.name
            );
        }
    }
}

/// Every file of a directory, by name.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn log_append_time_is_stamped_into_the_batch() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("lat-0");
    let config = LogConfig::from_pairs([
        ("message.timestamp.type", "LogAppendTime"),
        ("index.interval.bytes", "1"),
    ])
    .unwrap();
    let log = Log::open(
        dir.clone(),
        TopicPartition::new("lat", 0),
        config,
        LoadOptions::new(T0),
    )
    .unwrap();
    let now = T0 + 123_456;
    let codecs = [Compression::None, Compression::Gzip, Compression::Lz4];
    let mut sent = Vec::new();
    for (i, codec) in codecs.into_iter().enumerate() {
        let mut builder = RecordBatchBuilder::new(0, codec);
        for r in 0..3 {
            builder.append(r, 1_000 + r * 7, Some(b"k"), Some(b"value"), &[]);
        }
        let mut batch = builder.build().unwrap();
        let original = batch.clone();
        let append_time = now + 10 * i as i64;
        let info = log.append_as_leader(&mut batch, 3, append_time).unwrap();
        assert_eq!(info.log_append_time, Some(append_time));
        assert_eq!(info.max_timestamp, append_time);
        assert_eq!(info.first_offset, 3 * i as i64);
        sent.push(original);
    }

    // What a fetch returns, and then what is in the file after close, read independently.
    let fetched = log
        .read(0, 1 << 20, None, true)
        .unwrap()
        .unwrap()
        .read_to_vec()
        .unwrap();
    assert_eq!(
        log.offset_for_timestamp(now + 5).unwrap(),
        Some((now + 10, 3))
    );
    log.close(now).unwrap();
    drop(log);
    let file = fs::read(dir.join(format!("{:020}.log", 0))).unwrap();
    assert_eq!(fetched, file);
    let batches = parse_log(&file, "lat-0");
    assert_eq!(batches.len(), 3);
    for (i, (b, original)) in batches.iter().zip(&sent).enumerate() {
        assert!(b.log_append_time(), "batch {i}: timestamp type bit");
        assert_eq!(
            b.max_timestamp,
            now + 10 * i as i64,
            "batch {i}: maxTimestamp"
        );
        assert_eq!(b.base_offset, 3 * i as i64);
        assert_eq!(b.leader_epoch, 3);
        assert_eq!(b.codec(), [0, 1, 3][i]);
        // Only attributes, maxTimestamp and the CRC change; baseTimestamp and records stay.
        assert_eq!(b.base_timestamp, 1_000);
        let stored = &file[b.position as usize..(b.position + b.size) as usize];
        assert_eq!(stored[8..12], original[8..12]);
        assert_eq!(stored[23..35], original[23..35]);
        assert_eq!(stored[43..], original[43..]);
        assert_eq!(i16_at(stored, 21) & !0x08, i16_at(original, 21));
    }
    // The time index follows the stamped times.
    let listing = list_partition_dir(&dir);
    assert_eq!(listing.segments.len(), 1);
    check_sealed_segment(&dir, 0, 1);
    let time_index = parse_time_index(
        &fs::read(dir.join(format!("{:020}.timeindex", 0))).unwrap(),
        "lat-0",
    );
    assert_eq!(time_index.last(), Some(&(now + 20, 8)));
}

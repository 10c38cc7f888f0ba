//! The four record compression codecs Kafka defines, byte-compatible with its Java client.
//!
//! A compressed v2 batch compresses its records section as one stream (the 61-byte header stays
//! plain). What each codec writes, and why:
//!
//! * **gzip** — an RFC 1952 member at the default level (6, Java's `Deflater` default). Reading
//!   accepts concatenated members, as Java's `GZIPInputStream` does.
//! * **snappy** — Java's client writes through xerial's `SnappyOutputStream`, so we write its
//!   framing: the 16-byte header (`82 'SNAPPY' 00`, version 1, compatible version 1, both
//!   big-endian `i32`) and then, for every 32 KiB of input, a big-endian `u32` length followed by
//!   a raw snappy block. Reading accepts that framing (ignoring the version fields, which some
//!   producers write little-endian) and also plain raw snappy, as Java, librdkafka and
//!   kafka-python do.
//! * **lz4** — the LZ4 frame format with 64 KiB **independent** blocks and no checksums (Java's
//!   `Lz4BlockInputStream` rejects frames whose FLG byte lacks the block-independence bit). Our
//!   frame header is byte-identical to Java's (`04 22 4d 18 60 40 82`). Reading accepts any valid
//!   frame, linked blocks, content size and checksums included.
//! * **zstd** — a zstd frame at level 3 (Kafka's default). Reading accepts concatenated frames.
//!
//! Decompression is always bounded by a caller-supplied `max_output`, checked while streaming,
//! so a small hostile batch cannot expand into gigabytes (a "decompression bomb").

use std::io::{self, Read, Write};

use super::{BatchError, Compression};

/// Default bound on one batch's decompressed records, used by [`RecordBatch::records`].
///
/// Kafka's default `message.max.bytes` is 1 MiB and its producers' `batch.size` 16 KiB, so a
/// real batch decompresses to a few MiB at most even at extreme ratios; 128 MiB leaves ample room
/// for topics configured with large messages while capping what one hostile batch can make us
/// allocate. Callers that know a tighter limit (e.g. the topic's `max.message.bytes` times a
/// ratio) should use [`RecordBatch::records_with_limit`]. Apache Kafka sets no such limit, so a
/// legitimate batch above it would be readable there and not here; none is known in practice.
///
/// [`RecordBatch::records`]: super::RecordBatch::records
/// [`RecordBatch::records_with_limit`]: super::RecordBatch::records_with_limit
pub const DEFAULT_MAX_DECOMPRESSED: usize = 128 * 1024 * 1024;

/// xerial's stream header magic: `0x82`, `SNAPPY`, NUL.
pub const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// Length of xerial's header: magic, then `version` and `compatibleVersion` (`i32` each).
pub const XERIAL_HEADER_LEN: usize = 16;
/// Uncompressed bytes per xerial block (xerial's default block size, used by Java's client).
pub const XERIAL_BLOCK_SIZE: usize = 32 * 1024;
/// zstd level Kafka uses unless `compression.zstd.level` says otherwise.
pub const ZSTD_DEFAULT_LEVEL: i32 = 3;

/// Upper bound on snappy's expansion: the densest element, a 3-byte copy, yields 64 bytes.
const SNAPPY_MAX_RATIO: usize = 22;

/// Compresses `data` (a batch's encoded records) with `codec`, in the format Kafka's Java client
/// writes, so that every Kafka client can read the result. [`Compression::None`] copies.
pub fn compress(codec: Compression, data: &[u8]) -> Result<Vec<u8>, BatchError> {
    let err = |e: io::Error| codec_error(codec, e);
    match codec {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(data.len() / 2 + 64),
                flate2::Compression::default(),
            );
            enc.write_all(data).map_err(err)?;
            enc.finish().map_err(err)
        }
        Compression::Snappy => snappy_xerial_compress(data),
        Compression::Lz4 => {
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent)
                .block_checksums(false)
                .content_checksum(false);
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(
                info,
                Vec::with_capacity(data.len() / 2 + 64),
            );
            enc.write_all(data).map_err(err)?;
            enc.finish().map_err(|e| codec_error(codec, e))
        }
        Compression::Zstd => zstd::bulk::compress(data, ZSTD_DEFAULT_LEVEL).map_err(err),
    }
}

/// Decompresses a batch's records section, failing if the output would exceed `max_output`
/// bytes. The bound is enforced while decompressing, so memory use never passes it much.
pub fn decompress(
    codec: Compression,
    data: &[u8],
    max_output: usize,
) -> Result<Vec<u8>, BatchError> {
    match codec {
        Compression::None => {
            if data.len() > max_output {
                return Err(too_large(codec, max_output));
            }
            Ok(data.to_vec())
        }
        Compression::Gzip => {
            read_bounded(codec, flate2::read::MultiGzDecoder::new(data), max_output)
        }
        Compression::Snappy => snappy_decompress(data, max_output),
        Compression::Lz4 => {
            read_bounded(codec, lz4_flex::frame::FrameDecoder::new(data), max_output)
        }
        Compression::Zstd => {
            let decoder = zstd::stream::read::Decoder::with_buffer(data)
                .map_err(|e| codec_error(codec, e))?;
            read_bounded(codec, decoder, max_output)
        }
    }
}

fn codec_error(codec: Compression, e: impl std::fmt::Display) -> BatchError {
    BatchError::Compression {
        codec: codec.name(),
        reason: e.to_string(),
    }
}

fn too_large(codec: Compression, max_output: usize) -> BatchError {
    BatchError::Compression {
        codec: codec.name(),
        reason: format!("decompressed size exceeds the limit of {max_output} bytes"),
    }
}

/// Reads a decompressing stream to its end, but never more than `max_output + 1` bytes.
fn read_bounded(
    codec: Compression,
    reader: impl Read,
    max_output: usize,
) -> Result<Vec<u8>, BatchError> {
    let mut out = Vec::new();
    let limit = (max_output as u64).saturating_add(1);
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| codec_error(codec, e))?;
    if out.len() > max_output {
        return Err(too_large(codec, max_output));
    }
    Ok(out)
}

fn snappy_xerial_compress(data: &[u8]) -> Result<Vec<u8>, BatchError> {
    let mut out = Vec::with_capacity(XERIAL_HEADER_LEN + snap::raw::max_compress_len(data.len()));
    out.extend_from_slice(&XERIAL_MAGIC);
    out.extend_from_slice(&1i32.to_be_bytes()); // version
    out.extend_from_slice(&1i32.to_be_bytes()); // compatible version
    let mut encoder = snap::raw::Encoder::new();
    let mut block = vec![0u8; snap::raw::max_compress_len(XERIAL_BLOCK_SIZE.min(data.len()))];
    for chunk in data.chunks(XERIAL_BLOCK_SIZE) {
        let n = encoder
            .compress(chunk, &mut block)
            .map_err(|e| codec_error(Compression::Snappy, e))?;
        out.extend_from_slice(&(n as u32).to_be_bytes());
        out.extend_from_slice(&block[..n]);
    }
    Ok(out)
}

/// Whether `data` starts with xerial's stream header (only the magic is checked: Java and
/// kafka-python ignore the version fields too).
fn is_xerial(data: &[u8]) -> bool {
    data.len() >= XERIAL_HEADER_LEN && data[..XERIAL_MAGIC.len()] == XERIAL_MAGIC
}

fn snappy_decompress(data: &[u8], max_output: usize) -> Result<Vec<u8>, BatchError> {
    let mut out = Vec::new();
    if !is_xerial(data) {
        raw_snappy_into(data, max_output, &mut out)?;
        return Ok(out);
    }
    let mut rest = &data[XERIAL_HEADER_LEN..];
    while !rest.is_empty() {
        // xerial's reader also accepts concatenated streams, i.e. a header between blocks. A
        // block length can never start with 0x82 (it would be negative), so this is unambiguous.
        if is_xerial(rest) {
            rest = &rest[XERIAL_HEADER_LEN..];
            continue;
        }
        if rest.len() < 4 {
            return Err(codec_error(
                Compression::Snappy,
                "truncated xerial block length",
            ));
        }
        let len = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        rest = &rest[4..];
        if len < 0 || len as usize > rest.len() {
            return Err(codec_error(
                Compression::Snappy,
                format!("xerial block length {len} with {} bytes left", rest.len()),
            ));
        }
        let (block, tail) = rest.split_at(len as usize);
        let budget = max_output - out.len();
        raw_snappy_into(block, budget, &mut out)?;
        rest = tail;
    }
    Ok(out)
}

/// Decompresses one raw snappy block, appending to `out`, if its declared length fits `budget`.
fn raw_snappy_into(block: &[u8], budget: usize, out: &mut Vec<u8>) -> Result<(), BatchError> {
    let err = |e: snap::Error| codec_error(Compression::Snappy, e);
    let len = snap::raw::decompress_len(block).map_err(err)?;
    if len > budget {
        return Err(too_large(Compression::Snappy, out.len() + budget));
    }
    if len > block.len().saturating_mul(SNAPPY_MAX_RATIO) {
        return Err(codec_error(
            Compression::Snappy,
            format!("block of {} bytes cannot expand to {len}", block.len()),
        ));
    }
    let start = out.len();
    out.resize(start + len, 0);
    let n = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(err)?;
    out.truncate(start + n);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 5] = Compression::ALL;

    fn sample(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i * 7 % 251) as u8 ^ (i / 1000) as u8)
            .collect()
    }

    #[test]
    fn every_codec_round_trips_empty_small_and_multi_block() {
        for codec in ALL {
            for len in [0, 1, 100, XERIAL_BLOCK_SIZE, 200_000] {
                let data = sample(len);
                let packed = compress(codec, &data).unwrap();
                let unpacked = decompress(codec, &packed, len).unwrap();
                assert_eq!(unpacked, data, "{codec:?} len {len}");
            }
        }
    }

    #[test]
    fn xerial_header_is_exact_and_blocks_are_32k() {
        let data = sample(XERIAL_BLOCK_SIZE + 10);
        let out = compress(Compression::Snappy, &data).unwrap();
        assert_eq!(
            out[..16],
            [
                0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1
            ]
        );
        let first = u32::from_be_bytes(out[16..20].try_into().unwrap()) as usize;
        let block = &out[20..20 + first];
        assert_eq!(snap::raw::decompress_len(block).unwrap(), XERIAL_BLOCK_SIZE);
        let second = u32::from_be_bytes(out[20 + first..24 + first].try_into().unwrap()) as usize;
        assert_eq!(out.len(), 24 + first + second, "exactly two blocks");
    }

    #[test]
    fn snappy_reads_plain_raw_and_little_endian_versions() {
        let data = sample(5000);
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(decompress(Compression::Snappy, &raw, 5000).unwrap(), data);
        let mut framed = compress(Compression::Snappy, &data).unwrap();
        framed[8..16].copy_from_slice(&[1, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(
            decompress(Compression::Snappy, &framed, 5000).unwrap(),
            data
        );
        // Two concatenated xerial streams read as one.
        let mut twice = compress(Compression::Snappy, &data).unwrap();
        twice.extend(compress(Compression::Snappy, &data).unwrap());
        assert_eq!(
            decompress(Compression::Snappy, &twice, 10_000)
                .unwrap()
                .len(),
            10_000
        );
        // Header only: empty stream.
        assert!(
            decompress(Compression::Snappy, &twice[..16], 0)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn snappy_rejects_bad_framing() {
        let mut framed = compress(Compression::Snappy, &sample(100)).unwrap();
        framed.truncate(framed.len() - 1);
        assert!(decompress(Compression::Snappy, &framed, 1000).is_err());
        let mut neg = XERIAL_MAGIC.to_vec();
        neg.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xf0]);
        assert!(decompress(Compression::Snappy, &neg, 1000).is_err());
        // A raw block claiming far more output than its size allows fails before allocating.
        let claim = [0xff, 0xff, 0xff, 0x7f, 0x00];
        assert!(decompress(Compression::Snappy, &claim, usize::MAX).is_err());
    }

    #[test]
    fn lz4_frame_header_matches_java() {
        let out = compress(Compression::Lz4, &sample(200_000)).unwrap();
        assert_eq!(out[..4], [0x04, 0x22, 0x4d, 0x18], "LZ4 frame magic");
        let flg = out[4];
        assert_eq!(
            flg & 0x20,
            0x20,
            "block independence bit (FLG bit 5) must be set"
        );
        assert_eq!(flg >> 6, 1, "frame version 01");
        assert_eq!(
            out[4..7],
            [0x60, 0x40, 0x82],
            "Java's FLG, BD (64 KiB) and HC bytes"
        );
    }

    #[test]
    fn lz4_reads_linked_blocks_and_checksums() {
        let data = sample(300_000);
        let info = lz4_flex::frame::FrameInfo::new()
            .block_mode(lz4_flex::frame::BlockMode::Linked)
            .block_size(lz4_flex::frame::BlockSize::Max64KB)
            .content_checksum(true)
            .block_checksums(true)
            .content_size(Some(data.len() as u64));
        let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
        enc.write_all(&data).unwrap();
        let linked = enc.finish().unwrap();
        assert_eq!(linked[4] & 0x20, 0, "test frame really is linked");
        assert_eq!(
            decompress(Compression::Lz4, &linked, data.len()).unwrap(),
            data
        );
    }

    #[test]
    fn decompression_bombs_stop_at_the_limit() {
        let zeros = vec![0u8; 8 * 1024 * 1024];
        for codec in ALL {
            let packed = compress(codec, &zeros).unwrap();
            if codec != Compression::None {
                assert!(packed.len() < 1024 * 1024, "{codec:?} compresses zeros");
            }
            let err = decompress(codec, &packed, 1024 * 1024).unwrap_err();
            assert!(
                matches!(&err, BatchError::Compression { reason, .. } if reason.contains("limit")),
                "{codec:?}: {err}"
            );
            assert_eq!(
                decompress(codec, &packed, zeros.len()).unwrap().len(),
                zeros.len()
            );
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for codec in ALL[1..].iter().copied() {
            for junk in [&[0u8; 3][..], &[0xffu8; 40][..], &XERIAL_MAGIC[..]] {
                assert!(
                    decompress(codec, junk, 1 << 20).is_err(),
                    "{codec:?} {junk:?}"
                );
            }
        }
    }
}

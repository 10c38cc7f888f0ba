//! Kafka's variable-length integers, as used inside v2 records.
//!
//! Records encode their lengths, deltas and counts as zigzag varints (`i32`, at most 5 bytes)
//! and varlongs (`i64`, at most 10 bytes), the same encoding as protobuf's `sint32`/`sint64`
//! (Kafka's `ByteUtils.writeVarint`/`readVarint`). Decoding reads from a `&mut &[u8]` cursor and
//! advances it, so a record decoder can chain reads without index bookkeeping.
//!
//! Like Kafka, decoding rejects an encoding that is still continuing after the maximum number of
//! bytes ("varint is too long") and silently drops bits beyond the type's width in the last byte.

use super::BatchError;

/// Longest encoding of a varint (`i32`).
pub const MAX_VARINT_LEN: usize = 5;
/// Longest encoding of a varlong (`i64`).
pub const MAX_VARLONG_LEN: usize = 10;

fn zigzag32(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

fn unzigzag32(v: u32) -> i32 {
    ((v >> 1) as i32) ^ -((v & 1) as i32)
}

fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag64(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn write_unsigned(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn unsigned_len(v: u64) -> usize {
    // One byte per started group of 7 significant bits, at least one byte.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Reads an unsigned LEB128 value of at most `max_len` bytes.
fn read_unsigned(buf: &mut &[u8], max_len: usize, what: &str) -> Result<u64, BatchError> {
    let mut value: u64 = 0;
    for (i, &b) in buf.iter().enumerate().take(max_len) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            *buf = &buf[i + 1..];
            return Ok(value);
        }
    }
    Err(if buf.len() < max_len {
        BatchError::MalformedRecord(format!("truncated {what}"))
    } else {
        BatchError::MalformedRecord(format!("{what} is too long (over {max_len} bytes)"))
    })
}

/// Appends `v` as a zigzag varint (1–5 bytes).
pub fn write_varint(out: &mut Vec<u8>, v: i32) {
    write_unsigned(out, u64::from(zigzag32(v)));
}

/// Appends `v` as a zigzag varlong (1–10 bytes).
pub fn write_varlong(out: &mut Vec<u8>, v: i64) {
    write_unsigned(out, zigzag64(v));
}

/// Encoded size of `v` as a varint, for computing a record's length before writing it.
pub fn varint_len(v: i32) -> usize {
    unsigned_len(u64::from(zigzag32(v)))
}

/// Encoded size of `v` as a varlong.
pub fn varlong_len(v: i64) -> usize {
    unsigned_len(zigzag64(v))
}

/// Reads a zigzag varint and advances `buf` past it.
///
/// Fails with [`BatchError::MalformedRecord`] if `buf` ends inside the varint or the varint
/// continues past 5 bytes; `buf` is left unchanged on error.
pub fn read_varint(buf: &mut &[u8]) -> Result<i32, BatchError> {
    // Bits past 32 in the fifth byte are dropped, as Kafka's reader does.
    let raw = read_unsigned(buf, MAX_VARINT_LEN, "varint")?;
    Ok(unzigzag32(raw as u32))
}

/// Reads a zigzag varlong and advances `buf` past it (same error rules as [`read_varint`]).
pub fn read_varlong(buf: &mut &[u8]) -> Result<i64, BatchError> {
    let raw = read_unsigned(buf, MAX_VARLONG_LEN, "varlong")?;
    Ok(unzigzag64(raw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc32(v: i32) -> Vec<u8> {
        let mut out = Vec::new();
        write_varint(&mut out, v);
        out
    }

    #[test]
    fn known_encodings_match_kafka() {
        // Values from Kafka's ByteUtilsTest.
        assert_eq!(enc32(0), [0x00]);
        assert_eq!(enc32(-1), [0x01]);
        assert_eq!(enc32(1), [0x02]);
        assert_eq!(enc32(63), [0x7e]);
        assert_eq!(enc32(-64), [0x7f]);
        assert_eq!(enc32(64), [0x80, 0x01]);
        assert_eq!(enc32(i32::MAX), [0xfe, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(enc32(i32::MIN), [0xff, 0xff, 0xff, 0xff, 0x0f]);
        let mut out = Vec::new();
        write_varlong(&mut out, i64::MIN);
        assert_eq!(
            out,
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
    }

    #[test]
    fn overlong_and_truncated_are_malformed() {
        let six = [0x80u8, 0x80, 0x80, 0x80, 0x80, 0x00];
        let mut buf = &six[..];
        assert!(matches!(
            read_varint(&mut buf),
            Err(BatchError::MalformedRecord(_))
        ));
        assert_eq!(buf.len(), 6, "cursor untouched on error");
        let eleven = [0x80u8; 11];
        assert!(read_varlong(&mut &eleven[..]).is_err());
        assert!(read_varint(&mut &[0x80u8, 0x80][..]).is_err());
        assert!(read_varint(&mut &[][..]).is_err());
        // Ten bytes are fine for a varlong, five for a varint.
        let mut ok = &[0x80u8, 0x80, 0x80, 0x80, 0x00][..];
        assert_eq!(read_varint(&mut ok), Ok(0));
        assert!(ok.is_empty());
    }

    proptest! {
        #[test]
        fn varint_round_trip(v: i32, tail in proptest::collection::vec(any::<u8>(), 0..4)) {
            let mut out = Vec::new();
            write_varint(&mut out, v);
            prop_assert_eq!(out.len(), varint_len(v));
            out.extend_from_slice(&tail);
            let mut buf = &out[..];
            prop_assert_eq!(read_varint(&mut buf), Ok(v));
            prop_assert_eq!(buf, &tail[..]);
        }

        #[test]
        fn varlong_round_trip(v: i64) {
            let mut out = Vec::new();
            write_varlong(&mut out, v);
            prop_assert_eq!(out.len(), varlong_len(v));
            let mut buf = &out[..];
            prop_assert_eq!(read_varlong(&mut buf), Ok(v));
            prop_assert!(buf.is_empty());
        }

        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
            let _ = read_varint(&mut &bytes[..]);
            let _ = read_varlong(&mut &bytes[..]);
        }
    }
}

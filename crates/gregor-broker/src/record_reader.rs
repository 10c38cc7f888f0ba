//! `Reader`: a bounds-checked cursor over the bytes of a coordinator record, shared by the
//! `__consumer_offsets` and `__transaction_state` schemas, so that both decode Kafka's
//! primitive types (big-endian integers, varints, strings, arrays, tagged fields) the same way
//! and fail cleanly, never panic, on truncated or corrupt bytes.

use bytes::Bytes;
use uuid::Uuid;

/// The longest string Kafka's generated readers accept (`0x7fff` bytes), compact or not.
pub const MAX_STRING_LEN: usize = i16::MAX as usize;

/// Why bytes could not be read as the schema says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The bytes ended in the middle of a field.
    #[error("record truncated while reading {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// A length or count is negative (other than a null marker) or larger than allowed.
    #[error("invalid length {length} for {field}")]
    InvalidLength {
        /// The field being read.
        field: &'static str,
        /// The length found.
        length: i64,
    },
    /// A field that may not be null is null.
    #[error("{field} is null but is not nullable")]
    UnexpectedNull {
        /// The field being read.
        field: &'static str,
    },
    /// A string field is not valid UTF-8.
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 {
        /// The field being read.
        field: &'static str,
    },
    /// An unsigned varint runs past five bytes or past 32 bits.
    #[error("malformed varint in {field}")]
    InvalidVarint {
        /// The field being read.
        field: &'static str,
    },
    /// Bytes remain after the struct ended: the record is not what its version says.
    #[error("{count} unexpected bytes after {what}")]
    TrailingBytes {
        /// The key or value concerned.
        what: &'static str,
        /// How many bytes were left over.
        count: usize,
    },
}

/// A bounds-checked cursor over a record's bytes: every read fails cleanly at the end.
pub struct Reader<'a> {
    /// The bytes not read yet.
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Starts reading `buf` from its first byte.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], ReadError> {
        if n > self.buf.len() {
            return Err(ReadError::Truncated { field });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Takes the next `N` bytes as an array.
    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], ReadError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    /// Reads an `int8`.
    pub fn i8(&mut self, field: &'static str) -> Result<i8, ReadError> {
        Ok(i8::from_be_bytes(self.array(field)?))
    }

    /// Reads a big-endian `int16`.
    pub fn i16(&mut self, field: &'static str) -> Result<i16, ReadError> {
        Ok(i16::from_be_bytes(self.array(field)?))
    }

    /// Reads a big-endian `int32`.
    pub fn i32(&mut self, field: &'static str) -> Result<i32, ReadError> {
        Ok(i32::from_be_bytes(self.array(field)?))
    }

    /// Reads a big-endian `int64`.
    pub fn i64(&mut self, field: &'static str) -> Result<i64, ReadError> {
        Ok(i64::from_be_bytes(self.array(field)?))
    }

    /// Reads a 16-byte UUID.
    pub fn uuid(&mut self, field: &'static str) -> Result<Uuid, ReadError> {
        Ok(Uuid::from_bytes(self.array(field)?))
    }

    /// Reads an unsigned varint of at most 32 bits (five bytes).
    pub fn uvarint(&mut self, field: &'static str) -> Result<u32, ReadError> {
        let mut value: u64 = 0;
        for i in 0..5 {
            let [byte] = self.array::<1>(field)?;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return u32::try_from(value).map_err(|_| ReadError::InvalidVarint { field });
            }
        }
        Err(ReadError::InvalidVarint { field })
    }

    /// Reads a length prefix: `None` for null, else a length no larger than what remains
    /// divided by `min_size` (the least bytes one unit can take), so callers may reserve it.
    fn length(
        &mut self,
        flexible: bool,
        wide: bool,
        min_size: usize,
        field: &'static str,
    ) -> Result<Option<usize>, ReadError> {
        let raw: i64 = if flexible {
            i64::from(self.uvarint(field)?) - 1
        } else if wide {
            i64::from(self.i32(field)?)
        } else {
            i64::from(self.i16(field)?)
        };
        if raw == -1 {
            return Ok(None);
        }
        let len =
            usize::try_from(raw).map_err(|_| ReadError::InvalidLength { field, length: raw })?;
        if len.saturating_mul(min_size) > self.buf.len() {
            return Err(ReadError::Truncated { field });
        }
        Ok(Some(len))
    }

    /// Reads a nullable string (compact when `flexible`).
    pub fn nullable_str(
        &mut self,
        flexible: bool,
        field: &'static str,
    ) -> Result<Option<String>, ReadError> {
        let Some(len) = self.length(flexible, false, 1, field)? else {
            return Ok(None);
        };
        if len > MAX_STRING_LEN {
            return Err(ReadError::InvalidLength {
                field,
                length: len as i64,
            });
        }
        let bytes = self.take(len, field)?;
        let s = std::str::from_utf8(bytes).map_err(|_| ReadError::InvalidUtf8 { field })?;
        Ok(Some(s.to_owned()))
    }

    /// Reads a non-nullable string (compact when `flexible`).
    pub fn str(&mut self, flexible: bool, field: &'static str) -> Result<String, ReadError> {
        self.nullable_str(flexible, field)?
            .ok_or(ReadError::UnexpectedNull { field })
    }

    /// Reads a non-flexible, non-nullable string.
    pub fn string(&mut self, field: &'static str) -> Result<String, ReadError> {
        self.str(false, field)
    }

    /// Reads a non-nullable byte array (compact when `flexible`).
    pub fn bytes(&mut self, flexible: bool, field: &'static str) -> Result<Bytes, ReadError> {
        let len = self
            .length(flexible, true, 1, field)?
            .ok_or(ReadError::UnexpectedNull { field })?;
        Ok(Bytes::copy_from_slice(self.take(len, field)?))
    }

    /// Reads a non-nullable array's element count, each element taking at least `min_size`
    /// bytes.
    pub fn array_len(
        &mut self,
        flexible: bool,
        min_size: usize,
        field: &'static str,
    ) -> Result<usize, ReadError> {
        self.nullable_array_len(flexible, min_size, field)?
            .ok_or(ReadError::UnexpectedNull { field })
    }

    /// Reads a nullable array's element count (`None` for null), each element taking at
    /// least `min_size` bytes.
    pub fn nullable_array_len(
        &mut self,
        flexible: bool,
        min_size: usize,
        field: &'static str,
    ) -> Result<Option<usize>, ReadError> {
        self.length(flexible, true, min_size, field)
    }

    /// Skips a tagged-field section: a count, then per field its tag, size and data.
    pub fn skip_tagged_fields(&mut self) -> Result<(), ReadError> {
        let count = self.uvarint("tagged fields")?;
        for _ in 0..count {
            self.uvarint("tag")?;
            let size = self.uvarint("tagged field size")?;
            self.take(size as usize, "tagged field")?;
        }
        Ok(())
    }

    /// Checks that nothing is left after `what`.
    pub fn finish(&self, what: &'static str) -> Result<(), ReadError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(ReadError::TrailingBytes {
                what,
                count: self.buf.len(),
            })
        }
    }
}

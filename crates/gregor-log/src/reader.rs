//! Reading batches back out of a segment's `.log` file.
//!
//! Two access patterns: [`read_header_at`] preads one batch header (offset lookups touch only a
//! few headers past an index entry), and [`BatchReader`] streams whole batches in large chunks
//! (recovery checks every CRC, the cleaner decodes every record).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use gregor_protocol::batch::{LOG_OVERHEAD, RECORD_BATCH_OVERHEAD, RecordBatch, field};

/// Where a batch sits in a segment file, from its header alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPosition {
    /// First offset of the batch.
    pub base_offset: i64,
    /// Last offset of the batch.
    pub last_offset: i64,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Byte position of the batch in the file.
    pub position: u64,
    /// Size of the batch in bytes.
    pub size: u64,
}

impl BatchPosition {
    /// Describes `batch`, found at `position`.
    pub fn of(batch: &RecordBatch<'_>, position: u64) -> BatchPosition {
        BatchPosition {
            base_offset: batch.base_offset(),
            last_offset: batch.last_offset(),
            max_timestamp: batch.max_timestamp(),
            position,
            size: batch.size() as u64,
        }
    }

    /// Position just past the batch.
    pub fn end(&self) -> u64 {
        self.position + self.size
    }
}

/// Reads the header of the batch at `position`, if a complete, plausible one ends before
/// `file_size`. Content (CRC) is not checked.
pub fn read_header_at(
    file: &File,
    position: u64,
    file_size: u64,
) -> io::Result<Option<BatchPosition>> {
    if position + RECORD_BATCH_OVERHEAD as u64 > file_size {
        return Ok(None);
    }
    let mut header = [0u8; RECORD_BATCH_OVERHEAD];
    file.read_exact_at(&mut header, position)?;
    let length = i32::from_be_bytes(
        header[field::BATCH_LENGTH..field::BATCH_LENGTH + 4]
            .try_into()
            .expect("4"),
    );
    if length < (RECORD_BATCH_OVERHEAD - LOG_OVERHEAD) as i32 {
        return Ok(None);
    }
    let size = LOG_OVERHEAD as u64 + length as u64;
    if position + size > file_size {
        return Ok(None);
    }
    let base_offset = i64::from_be_bytes(header[0..8].try_into().expect("8"));
    let delta = i32::from_be_bytes(
        header[field::LAST_OFFSET_DELTA..field::LAST_OFFSET_DELTA + 4]
            .try_into()
            .expect("4"),
    );
    let max_timestamp = i64::from_be_bytes(
        header[field::MAX_TIMESTAMP..field::MAX_TIMESTAMP + 8]
            .try_into()
            .expect("8"),
    );
    Ok(Some(BatchPosition {
        base_offset,
        last_offset: base_offset + i64::from(delta),
        max_timestamp,
        position,
        size,
    }))
}

/// A region of a segment file holding whole batches: what a fetch returns. A server can hand
/// `file` + `position` + `len` to `sendfile`, or call [`FileSlice::read_to_vec`].
#[derive(Debug, Clone)]
pub struct FileSlice {
    /// The segment's `.log` file (kept open even if the segment is deleted meanwhile).
    pub file: Arc<File>,
    /// First byte of the region.
    pub position: u64,
    /// Length of the region in bytes.
    pub len: usize,
}

impl FileSlice {
    /// Reads the region into memory. A segment truncated meanwhile yields fewer bytes.
    pub fn read_to_vec(&self) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; self.len];
        let mut done = 0;
        while done < buf.len() {
            let n = self
                .file
                .read_at(&mut buf[done..], self.position + done as u64)?;
            if n == 0 {
                break;
            }
            done += n;
        }
        buf.truncate(done);
        Ok(buf)
    }
}

/// Streams whole batches from a file in large sequential reads.
pub struct BatchReader<'f> {
    file: &'f File,
    /// File position of `buf[0]`.
    buf_start: u64,
    buf: Vec<u8>,
    /// Next batch position, relative to the file.
    position: u64,
    end: u64,
}

/// What [`BatchReader::next_batch`] found.
pub enum Scan<'a> {
    /// A batch (structurally complete; CRC not checked) at this file position.
    Batch(u64, &'a [u8]),
    /// Bytes remain but do not form a complete, plausible batch: a torn or garbage tail.
    Invalid(u64),
    /// Clean end of file.
    End,
}

const CHUNK: usize = 1 << 20;

impl<'f> BatchReader<'f> {
    /// Reads `file` from `start` up to `end` (its size).
    pub fn new(file: &'f File, start: u64, end: u64) -> BatchReader<'f> {
        BatchReader {
            file,
            buf_start: start,
            buf: Vec::new(),
            position: start,
            end,
        }
    }

    /// Makes `buf` hold `[position, position + len)`, reading ahead a chunk.
    fn fill(&mut self, len: usize) -> io::Result<bool> {
        if self.position + len as u64 > self.end {
            return Ok(false);
        }
        let have_from = (self.position - self.buf_start) as usize;
        if have_from + len <= self.buf.len() {
            return Ok(true);
        }
        self.buf.drain(..have_from.min(self.buf.len()));
        self.buf_start = self.position;
        let want = len.max(CHUNK).min((self.end - self.position) as usize);
        let have = self.buf.len();
        self.buf.resize(want, 0);
        self.file
            .read_exact_at(&mut self.buf[have..], self.position + have as u64)?;
        Ok(true)
    }

    /// The next batch, or why there is none.
    pub fn next_batch(&mut self) -> io::Result<Scan<'_>> {
        if self.position >= self.end {
            return Ok(Scan::End);
        }
        if !self.fill(RECORD_BATCH_OVERHEAD)? {
            return Ok(Scan::Invalid(self.position));
        }
        let at = (self.position - self.buf_start) as usize;
        let length = i32::from_be_bytes(
            self.buf[at + field::BATCH_LENGTH..at + field::BATCH_LENGTH + 4]
                .try_into()
                .expect("4"),
        );
        if length < (RECORD_BATCH_OVERHEAD - LOG_OVERHEAD) as i32 {
            return Ok(Scan::Invalid(self.position));
        }
        let size = LOG_OVERHEAD + length as usize;
        if !self.fill(size)? {
            return Ok(Scan::Invalid(self.position));
        }
        let position = self.position;
        let at = (position - self.buf_start) as usize;
        self.position += size as u64;
        Ok(Scan::Batch(position, &self.buf[at..at + size]))
    }
}

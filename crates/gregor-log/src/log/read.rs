//! Reading: fetches by offset, lookups by timestamp.

use super::Log;
use crate::error::{LogError, Result};
use crate::reader::FileSlice;

impl Log {
    /// Whole batches starting with the one that holds `start_offset`: at most `max_bytes`,
    /// except that the first batch is returned whole even if larger when `min_one_batch`
    /// (Kafka's rule, so a consumer can always make progress). Nothing at or past
    /// `upper_bound` (exclusive; the high watermark or last stable offset) is returned.
    ///
    /// `Ok(None)` when there is nothing to return yet; `OffsetOutOfRange` when `start_offset`
    /// is below the log start or past the log end.
    pub fn read(
        &self,
        start_offset: i64,
        max_bytes: usize,
        upper_bound: Option<i64>,
        min_one_batch: bool,
    ) -> Result<Option<FileSlice>> {
        self.check_online()?;
        let state = self.state.read();
        if start_offset < state.log_start_offset || start_offset > state.log_end_offset {
            return Err(LogError::OffsetOutOfRange {
                offset: start_offset,
                log_start_offset: state.log_start_offset,
                log_end_offset: state.log_end_offset,
            });
        }
        let bound = upper_bound.map_or(state.log_end_offset, |b| b.min(state.log_end_offset));
        let first = state
            .segments
            .range(..=start_offset)
            .next_back()
            .map_or(i64::MIN, |(b, _)| *b);
        let mut segments = state.segments.range(first..).peekable();
        while let Some((&base, segment)) = segments.next() {
            if base >= bound || start_offset >= bound {
                break;
            }
            let next_base = segments.peek().map_or(i64::MAX, |(b, _)| **b);
            let max_position = if bound < next_base {
                segment
                    .translate_offset(bound)?
                    .map_or(segment.size(), |b| b.position)
            } else {
                segment.size()
            };
            if let Some(slice) =
                segment.read(start_offset, max_bytes, max_position, min_one_batch)?
            {
                return Ok((slice.len > 0).then_some(slice));
            }
        }
        Ok(None)
    }

    /// ListOffsets by timestamp: the first record at or after `timestamp`, as
    /// `(record timestamp, offset)`; `None` if every record is older.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>> {
        self.check_online()?;
        let state = self.state.read();
        for segment in state.segments.values() {
            if segment.largest_timestamp()? < timestamp {
                continue;
            }
            if let Some(found) =
                segment.find_offset_by_timestamp(timestamp, state.log_start_offset)?
            {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// ListOffsets `MAX_TIMESTAMP`: the record with the largest timestamp, as
    /// `(timestamp, offset)`; the earliest such record if several share it.
    pub fn max_timestamp_offset(&self) -> Result<Option<(i64, i64)>> {
        self.check_online()?;
        let state = self.state.read();
        let mut best: Option<(i64, i64)> = None;
        for segment in state.segments.values() {
            if let Some((ts, offset)) = segment.max_timestamp_record()? {
                if best.is_none_or(|(b, _)| ts > b) && offset >= state.log_start_offset {
                    best = Some((ts, offset));
                }
            }
        }
        Ok(best)
    }
}

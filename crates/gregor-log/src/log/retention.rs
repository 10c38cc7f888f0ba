//! Removing data: retention by time and size, DeleteRecords, follower truncation, and the
//! delayed removal of `.deleted` files.
//!
//! Deleted segments are renamed to `.deleted` at once (so a restart never resurrects them) and
//! their files removed after `file.delete.delay.ms`, giving fetches that already hold a file
//! handle time to finish, as Kafka does.

use super::{Log, LogState, PendingDelete};
use crate::config::LogConfig;
use crate::error::{LogError, Result};
use crate::names::DELETED_SUFFIX;
use crate::segment::{IndexSettings, LogSegment};

impl Log {
    /// One retention pass: deletes the oldest segments past `retention.ms` (judged by each
    /// segment's largest timestamp), past `retention.bytes`, or wholly below the log start
    /// offset. Returns the number of segments deleted. Compact-only logs keep everything but
    /// the last rule.
    pub fn delete_old_segments(&self, now_ms: i64) -> Result<usize> {
        self.check_online()?;
        let config = self.config();
        let result = (|| {
            let mut state = self.state.write();
            let mut deleted = self.delete_below_log_start(&mut state, &config, now_ms)?;
            if config.cleanup_policy.delete && config.retention_ms >= 0 {
                deleted += self.delete_prefix(
                    &mut state,
                    &config,
                    now_ms,
                    "retention.ms",
                    |segment, _| Ok(now_ms - segment.largest_timestamp()? > config.retention_ms),
                )?;
            }
            if config.cleanup_policy.delete && config.retention_bytes >= 0 {
                let total: u64 = state.segments.values().map(LogSegment::size).sum();
                let mut excess = total as i64 - config.retention_bytes;
                deleted += self.delete_prefix(
                    &mut state,
                    &config,
                    now_ms,
                    "retention.bytes",
                    |segment, _| {
                        let fits = excess - segment.size() as i64 >= 0;
                        if fits {
                            excess -= segment.size() as i64;
                        }
                        Ok(fits)
                    },
                )?;
            }
            Ok(deleted)
        })();
        self.guard_io(result)
    }

    fn delete_below_log_start(
        &self,
        state: &mut LogState,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<usize> {
        let log_start = state.log_start_offset;
        self.delete_prefix(state, config, now_ms, "log start offset", |_, next| {
            Ok(next.is_some_and(|n| n <= log_start))
        })
    }

    /// Deletes the longest prefix of segments matching `predicate(segment, next base)`. If
    /// that takes every segment, a new empty one is rolled first so the log keeps its end
    /// offset, as Kafka does. Never deletes an empty active segment.
    fn delete_prefix(
        &self,
        state: &mut LogState,
        config: &LogConfig,
        now_ms: i64,
        reason: &str,
        mut predicate: impl FnMut(&LogSegment, Option<i64>) -> Result<bool>,
    ) -> Result<usize> {
        let bases: Vec<i64> = state.segments.keys().copied().collect();
        let mut doomed = Vec::new();
        for (i, base) in bases.iter().enumerate() {
            let segment = &state.segments[base];
            let next = bases.get(i + 1).copied();
            if (next.is_none() && segment.size() == 0) || !predicate(segment, next)? {
                break;
            }
            doomed.push(*base);
        }
        if doomed.is_empty() {
            return Ok(0);
        }
        if doomed.len() == bases.len() {
            let end = state.log_end_offset;
            self.roll(state, end, config)?;
        }
        for base in &doomed {
            let segment = state.segments.remove(base).expect("listed above");
            tracing::info!(log = %self.topic_partition, segment = base, reason, "deleting segment");
            self.schedule_delete(segment, config, now_ms)?;
        }
        let first = *state
            .segments
            .keys()
            .next()
            .expect("the active segment remains");
        state.log_start_offset = state.log_start_offset.max(first);
        self.leader_epochs
            .lock()
            .truncate_from_start(state.log_start_offset)?;
        self.trim_producer_state_head(state)?;
        let mut pending = self.pending.lock();
        pending.retain_existing(state);
        pending.directory = true;
        Ok(doomed.len())
    }

    /// Renames a segment's files to `.deleted` and queues their removal.
    pub(super) fn schedule_delete(
        &self,
        mut segment: LogSegment,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<()> {
        segment.change_suffix(DELETED_SUFFIX)?;
        if config.file_delete_delay_ms == 0 {
            return segment.delete_files();
        }
        let due_ms = now_ms.saturating_add(config.file_delete_delay_ms);
        self.pending_deletes
            .lock()
            .push(PendingDelete { due_ms, segment });
        Ok(())
    }

    /// Removes `.deleted` files whose delay has passed. Returns how many segments went.
    pub fn delete_expired_files(&self, now_ms: i64) -> Result<usize> {
        let due: Vec<PendingDelete> = {
            let mut pending = self.pending_deletes.lock();
            let (due, keep) = std::mem::take(&mut *pending)
                .into_iter()
                .partition(|p| p.due_ms <= now_ms);
            *pending = keep;
            due
        };
        for p in &due {
            self.guard_io(p.segment.delete_files())?;
        }
        Ok(due.len())
    }

    /// DeleteRecords: moves the log start offset up to `offset` and deletes the segments now
    /// wholly below it. Returns the new log start offset.
    pub fn delete_records_before(&self, offset: i64, now_ms: i64) -> Result<i64> {
        self.check_online()?;
        let config = self.config();
        let result = (|| {
            let mut state = self.state.write();
            if offset > state.log_end_offset || offset < 0 {
                return Err(LogError::OffsetOutOfRange {
                    offset,
                    log_start_offset: state.log_start_offset,
                    log_end_offset: state.log_end_offset,
                });
            }
            if offset > state.log_start_offset {
                state.log_start_offset = offset;
                self.leader_epochs.lock().truncate_from_start(offset)?;
                self.delete_below_log_start(&mut state, &config, now_ms)?;
            }
            Ok(state.log_start_offset)
        })();
        self.guard_io(result)
    }

    /// Follower truncation: removes every record at or after `offset` (a batch straddling it
    /// goes whole). Returns the new log end offset.
    pub fn truncate_to(&self, offset: i64, now_ms: i64) -> Result<i64> {
        self.check_online()?;
        let config = self.config();
        let result = (|| {
            let mut state = self.state.write();
            if offset >= state.log_end_offset {
                // Nothing to cut, but epochs that start at the log end may: a replica that was
                // leader for an epoch without writing in it must forget that epoch, or it keeps
                // finding a divergence with the new leader (Kafka's `truncateTo` does the same).
                self.leader_epochs
                    .lock()
                    .truncate_from_end(state.log_end_offset)?;
                return Ok(state.log_end_offset);
            }
            if offset < state.log_start_offset
                || offset <= *state.segments.keys().next().expect("a segment")
            {
                return self.truncate_fully_and_start_at(
                    &mut state,
                    &config,
                    offset.max(0),
                    now_ms,
                );
            }
            let doomed: Vec<i64> = state.segments.range(offset..).map(|(b, _)| *b).collect();
            for base in doomed {
                let segment = state.segments.remove(&base).expect("listed above");
                self.schedule_delete(segment, &config, now_ms)?;
            }
            let active = state.active_mut();
            let new_end = active
                .translate_offset(offset)?
                .map_or(offset, |b| b.base_offset.min(offset));
            active.truncate_to(offset)?;
            active.activate()?;
            // A batch straddling both the log start and `offset` goes whole: the log start
            // may not stay past the new end (Kafka: `logStartOffset = min(target, logStart)`).
            state.log_start_offset = state.log_start_offset.min(new_end);
            self.finish_truncation(&mut state, new_end)
        })();
        self.guard_io(result)
    }

    /// Deletes every segment and starts an empty log at `offset`.
    fn truncate_fully_and_start_at(
        &self,
        state: &mut LogState,
        config: &LogConfig,
        offset: i64,
        now_ms: i64,
    ) -> Result<i64> {
        let segments = std::mem::take(&mut state.segments);
        for (_, segment) in segments {
            self.schedule_delete(segment, config, now_ms)?;
        }
        let segment = LogSegment::create(&self.dir, offset, IndexSettings::from(config), "")?;
        state.segments.insert(offset, segment);
        state.log_start_offset = offset;
        self.finish_truncation(state, offset)
    }

    fn finish_truncation(&self, state: &mut LogState, new_end: i64) -> Result<i64> {
        state.log_end_offset = new_end;
        self.truncate_producer_state(state, new_end)?;
        self.group_commit
            .set_durable(self.group_commit.durable_offset().min(new_end));
        self.leader_epochs.lock().truncate_from_end(new_end)?;
        let mut pending = self.pending.lock();
        pending.retain_existing(state);
        if pending.logs.last().map(|(base, _, _)| *base) != Some(state.active().base_offset()) {
            pending.track(state.active());
        }
        pending.written_end = new_end;
        pending.recovery_point = pending.recovery_point.min(new_end);
        pending.directory = true;
        drop(pending);
        tracing::info!(log = %self.topic_partition, log_end_offset = new_end, "truncated log");
        Ok(new_end)
    }
}

//! Group commit: many appenders, one `fdatasync`.
//!
//! An appender that needs its data durable calls [`GroupCommit::wait_durable`] with the offset
//! after its last record. If no flush is running it becomes the flusher: it syncs everything
//! appended so far (not just its own batch) and publishes the new durable offset. Appenders
//! arriving while a flush runs wait for it, and one of them then flushes whatever accumulated
//! meanwhile for all of them. So under load one fsync covers every batch that arrived while the
//! previous fsync ran, and durability costs latency rather than throughput.

use parking_lot::{Condvar, Mutex};

use crate::error::Result;

#[derive(Debug)]
struct State {
    /// Every offset below this is on disk.
    durable: i64,
    /// A flush is running.
    flushing: bool,
    /// Number of fsyncs performed (for tests and metrics).
    flushes: u64,
}

/// Coordinates flushes of one log among concurrent waiters.
#[derive(Debug)]
pub struct GroupCommit {
    state: Mutex<State>,
    done: Condvar,
}

impl GroupCommit {
    /// Starts with everything below `durable` known to be on disk.
    pub fn new(durable: i64) -> GroupCommit {
        GroupCommit {
            state: Mutex::new(State {
                durable,
                flushing: false,
                flushes: 0,
            }),
            done: Condvar::new(),
        }
    }

    /// Offset below which everything is durable.
    pub fn durable_offset(&self) -> i64 {
        self.state.lock().durable
    }

    /// Number of flushes run so far.
    pub fn flush_count(&self) -> u64 {
        self.state.lock().flushes
    }

    /// Records that a flush outside this coordinator (close, recovery) made `offset` durable,
    /// or that truncation moved the end of the log below it.
    pub fn set_durable(&self, offset: i64) {
        self.state.lock().durable = offset;
    }

    /// Blocks until every offset below `target` is durable. `flush` syncs the log and returns
    /// the offset it made durable (the log end offset it saw when it started).
    pub fn wait_durable(&self, target: i64, flush: impl Fn() -> Result<i64>) -> Result<()> {
        let mut state = self.state.lock();
        loop {
            if state.durable >= target {
                return Ok(());
            }
            if state.flushing {
                self.done.wait(&mut state);
                continue;
            }
            state.flushing = true;
            drop(state);
            let result = flush();
            state = self.state.lock();
            state.flushing = false;
            state.flushes += 1;
            if let Ok(offset) = result {
                state.durable = state.durable.max(offset);
            }
            self.done.notify_all();
            result?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    #[test]
    fn concurrent_waiters_share_flushes() {
        let commit = Arc::new(GroupCommit::new(0));
        let end = Arc::new(AtomicI64::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (commit, end) = (Arc::clone(&commit), Arc::clone(&end));
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let mine = end.fetch_add(1, Ordering::SeqCst) + 1;
                        commit
                            .wait_durable(mine, || {
                                std::thread::sleep(std::time::Duration::from_millis(1));
                                Ok(end.load(Ordering::SeqCst))
                            })
                            .unwrap();
                        assert!(commit.durable_offset() >= mine);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(commit.durable_offset(), 800);
        assert!(
            commit.flush_count() < 800,
            "{} flushes for 800 appends",
            commit.flush_count()
        );
    }

    #[test]
    fn a_failed_flush_reports_and_retries() {
        let commit = GroupCommit::new(0);
        let err = commit.wait_durable(5, || Err(crate::LogError::Offline("t-0".into())));
        assert!(err.is_err());
        commit.wait_durable(5, || Ok(5)).unwrap();
        assert_eq!(commit.durable_offset(), 5);
    }
}

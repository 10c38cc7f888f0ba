//! `LogManager`: every partition log of a broker, across its `log.dirs`.
//!
//! It owns what is per log directory rather than per log: the recovery-point, log-start-offset
//! and cleaner-offset checkpoints, and the clean-shutdown marker that lets the next start skip
//! recovery. It also runs the periodic work a broker schedules: retention, removal of
//! `.deleted` files, `flush.ms`, compaction and checkpointing.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::checkpoint::{read_offsets, write_offsets};
use crate::cleaner::{CleanerProgress, LogCleaner};
use crate::config::LogConfig;
use crate::error::{IoContext, Result};
use crate::log::{LoadOptions, Log};
use crate::names::{
    CLEAN_SHUTDOWN_MARKER, CLEANER_OFFSET_CHECKPOINT, CLUSTER_METADATA_DIR,
    LOG_START_OFFSET_CHECKPOINT, RECOVERY_POINT_CHECKPOINT, TopicPartition,
};

/// The logs of one broker.
#[derive(Debug)]
pub struct LogManager {
    dirs: Vec<PathBuf>,
    logs: RwLock<HashMap<TopicPartition, Arc<Log>>>,
    /// First dirty offset of each compacted log, per log directory.
    cleaner_offsets: Mutex<HashMap<PathBuf, BTreeMap<TopicPartition, i64>>>,
    /// Earliest delete horizon of the tombstones each compacted log kept.
    delete_horizons: Mutex<HashMap<TopicPartition, i64>>,
    cleaner: LogCleaner,
}

fn marker(dir: &Path) -> PathBuf {
    dir.join(CLEAN_SHUTDOWN_MARKER)
}

/// Logs opened at once. Recovery after a crash is bound by fsync latency, not CPU (each
/// recovered log syncs its tail segments and directory), so overlapping them pays even on two
/// cores: 50 partitions recover in a fraction of the sequential time.
const RECOVERY_THREADS: usize = 8;

/// Opens the given logs on up to [`RECOVERY_THREADS`] threads; the first error wins.
fn open_in_parallel(
    pending: Vec<(PathBuf, TopicPartition, LoadOptions)>,
    config_for: &(impl Fn(&TopicPartition) -> LogConfig + Sync),
) -> Result<Vec<(TopicPartition, Log)>> {
    let threads = RECOVERY_THREADS.min(pending.len());
    let queue = Mutex::new(pending.into_iter());
    let opened = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    loop {
                        let next = queue.lock().next();
                        let Some((path, tp, options)) = next else {
                            return Ok(());
                        };
                        let log = Log::open(path, tp.clone(), config_for(&tp), options)?;
                        opened.lock().push((tp, log));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().expect("log loading does not panic"))
    })?;
    Ok(opened.into_inner())
}

impl LogManager {
    /// Opens every partition directory under `dirs`, recovering logs if a directory lacks
    /// the clean-shutdown marker. `config_for` supplies each topic's settings.
    pub fn open(
        dirs: Vec<PathBuf>,
        config_for: impl Fn(&TopicPartition) -> LogConfig + Sync,
        now_ms: i64,
    ) -> Result<LogManager> {
        let mut logs = HashMap::new();
        let mut cleaner_offsets = HashMap::new();
        for dir in &dirs {
            fs::create_dir_all(dir).at(dir)?;
            let clean = marker(dir).exists();
            let recovery_points = read_offsets(&dir.join(RECOVERY_POINT_CHECKPOINT))?;
            let log_starts = read_offsets(&dir.join(LOG_START_OFFSET_CHECKPOINT))?;
            cleaner_offsets.insert(
                dir.clone(),
                read_offsets(&dir.join(CLEANER_OFFSET_CHECKPOINT))?,
            );
            let mut pending = Vec::new();
            for entry in fs::read_dir(dir).at(dir)? {
                let entry = entry.at(dir)?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if entry.path().is_dir() && name.ends_with("-delete") {
                    fs::remove_dir_all(entry.path()).at(&entry.path())?;
                    continue;
                }
                if name == CLUSTER_METADATA_DIR {
                    continue;
                }
                let Some(tp) = TopicPartition::from_dir_name(name) else {
                    continue;
                };
                if !entry.path().is_dir() {
                    continue;
                }
                let options = LoadOptions {
                    recovery_point: recovery_points.get(&tp).copied().unwrap_or(0),
                    log_start_offset: log_starts.get(&tp).copied().unwrap_or(0),
                    had_clean_shutdown: clean,
                    now_ms,
                };
                pending.push((entry.path(), tp, options));
            }
            let loaded = pending.len();
            for (tp, log) in open_in_parallel(pending, &config_for)? {
                logs.insert(tp, Arc::new(log));
            }
            tracing::info!(dir = %dir.display(), logs = loaded, clean_shutdown = clean, "loaded log directory");
        }
        // From here on a crash is unclean until the next orderly shutdown.
        for dir in &dirs {
            match fs::remove_file(marker(dir)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).at(&marker(dir));
                }
                _ => {}
            }
        }
        Ok(LogManager {
            dirs,
            logs: RwLock::new(logs),
            cleaner_offsets: Mutex::new(cleaner_offsets),
            delete_horizons: Mutex::new(HashMap::new()),
            cleaner: LogCleaner,
        })
    }

    /// The log directories.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The log of `tp`, if this broker has it.
    pub fn get_log(&self, tp: &TopicPartition) -> Option<Arc<Log>> {
        self.logs.read().get(tp).cloned()
    }

    /// Every log, in no particular order.
    pub fn all_logs(&self) -> Vec<Arc<Log>> {
        self.logs.read().values().cloned().collect()
    }

    /// The log of `tp`, created with `config` in the least loaded directory if missing.
    pub fn get_or_create_log(
        &self,
        tp: &TopicPartition,
        config: LogConfig,
        now_ms: i64,
    ) -> Result<Arc<Log>> {
        let mut logs = self.logs.write();
        if let Some(log) = logs.get(tp) {
            return Ok(Arc::clone(log));
        }
        let dir = self
            .dirs
            .iter()
            .min_by_key(|d| {
                logs.values()
                    .filter(|l| l.dir().parent() == Some(d.as_path()))
                    .count()
            })
            .expect("at least one log dir");
        let log = Arc::new(Log::open(
            dir.join(tp.dir_name()),
            tp.clone(),
            config,
            LoadOptions::new(now_ms),
        )?);
        logs.insert(tp.clone(), Arc::clone(&log));
        Ok(log)
    }

    /// Deletes the log of `tp` (a deleted topic): its directory is renamed with Kafka's
    /// `-delete` suffix at once, so a crash cannot bring it back, then removed.
    pub fn delete_log(&self, tp: &TopicPartition) -> Result<bool> {
        let Some(log) = self.logs.write().remove(tp) else {
            return Ok(false);
        };
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let doomed = log
            .dir()
            .with_file_name(format!("{}.{unique:x}-delete", tp.dir_name()));
        fs::rename(log.dir(), &doomed).at(log.dir())?;
        if let Some(parent) = doomed.parent() {
            fs::File::open(parent)
                .and_then(|d| d.sync_all())
                .at(parent)?;
        }
        fs::remove_dir_all(&doomed).at(&doomed)?;
        for offsets in self.cleaner_offsets.lock().values_mut() {
            offsets.remove(tp);
        }
        self.delete_horizons.lock().remove(tp);
        Ok(true)
    }

    fn logs_in(&self, dir: &Path) -> Vec<Arc<Log>> {
        self.logs
            .read()
            .values()
            .filter(|l| l.dir().parent() == Some(dir))
            .cloned()
            .collect()
    }

    /// Writes each directory's recovery-point, log-start-offset and cleaner checkpoints.
    pub fn checkpoint(&self) -> Result<()> {
        for dir in &self.dirs {
            let logs = self.logs_in(dir);
            let recovery: BTreeMap<_, _> = logs
                .iter()
                .map(|l| (l.topic_partition().clone(), l.recovery_point()))
                .collect();
            let starts: BTreeMap<_, _> = logs
                .iter()
                .map(|l| (l.topic_partition().clone(), l.log_start_offset()))
                .collect();
            write_offsets(&dir.join(RECOVERY_POINT_CHECKPOINT), &recovery)?;
            write_offsets(&dir.join(LOG_START_OFFSET_CHECKPOINT), &starts)?;
            let cleaner = self
                .cleaner_offsets
                .lock()
                .get(dir)
                .cloned()
                .unwrap_or_default();
            write_offsets(&dir.join(CLEANER_OFFSET_CHECKPOINT), &cleaner)?;
        }
        Ok(())
    }

    /// One retention pass over every log (time, size, log start offset), then removal of
    /// `.deleted` files whose delay passed. A failing log is logged and skipped.
    pub fn run_retention(&self, now_ms: i64) -> usize {
        let mut deleted = 0;
        for log in self.all_logs() {
            match log
                .delete_old_segments(now_ms)
                .and_then(|n| log.delete_expired_files(now_ms).map(|_| n))
            {
                Ok(n) => deleted += n,
                Err(e) => {
                    tracing::warn!(log = %log.topic_partition(), error = %e, "retention failed")
                }
            }
        }
        deleted
    }

    /// Applies `flush.ms` to every log.
    pub fn flush_due(&self, now_ms: i64) {
        for log in self.all_logs() {
            if let Err(e) = log.flush_if_due(now_ms) {
                tracing::warn!(log = %log.topic_partition(), error = %e, "periodic flush failed");
            }
        }
    }

    /// One compaction pass over every compacted log; progress is kept for the checkpoint.
    /// Returns the number of logs cleaned.
    pub fn run_cleaner(&self, now_ms: i64) -> usize {
        let mut cleaned = 0;
        for log in self.all_logs() {
            let Some(dir) = log.dir().parent().map(Path::to_path_buf) else {
                continue;
            };
            let tp = log.topic_partition().clone();
            let progress = CleanerProgress {
                first_dirty_offset: self
                    .cleaner_offsets
                    .lock()
                    .get(&dir)
                    .and_then(|m| m.get(&tp).copied())
                    .unwrap_or(0),
                earliest_delete_horizon: self.delete_horizons.lock().get(&tp).copied(),
            };
            match self.cleaner.clean(&log, progress, now_ms) {
                Ok(Some(stats)) => {
                    match stats.earliest_delete_horizon {
                        Some(h) => self.delete_horizons.lock().insert(tp.clone(), h),
                        None => self.delete_horizons.lock().remove(&tp),
                    };
                    self.cleaner_offsets
                        .lock()
                        .entry(dir)
                        .or_default()
                        .insert(tp, stats.next_dirty_offset);
                    cleaned += 1;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(log = %tp, error = %e, "compaction failed"),
            }
        }
        cleaned
    }

    /// Orderly shutdown: close every log (flushed, indexes trimmed), write the checkpoints,
    /// then the clean-shutdown markers — last, so they only exist if all else succeeded.
    pub fn shutdown(&self, now_ms: i64) -> Result<()> {
        for log in self.all_logs() {
            log.close(now_ms)?;
        }
        self.checkpoint()?;
        for dir in &self.dirs {
            let path = marker(dir);
            fs::write(&path, b"{\"version\":0,\"brokerEpoch\":-1}").at(&path)?;
            fs::File::open(&path).and_then(|f| f.sync_all()).at(&path)?;
            fs::File::open(dir).and_then(|d| d.sync_all()).at(dir)?;
        }
        Ok(())
    }
}

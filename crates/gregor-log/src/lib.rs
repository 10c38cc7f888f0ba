//! Gregor's storage engine: the segmented, Kafka-layout log every partition lives in.
//!
//! A partition directory `<topic>-<partition>/` holds [`LogSegment`]s named by their base
//! offset: a `.log` of v2 record batches stored byte for byte as Kafka stores them, a sparse
//! `.index` (offset → position) and a `.timeindex` (timestamp → offset). [`Log`] appends,
//! reads, rolls, truncates and recovers one partition; retention and the [`LogCleaner`]
//! (compaction) remove data; [`LogManager`] owns the logs of a broker's log directories with
//! their checkpoints and clean-shutdown marker.
//!
//! Durability: appends land in the page cache and are made durable by group commit
//! ([`Log::flush_to`]); concurrent appenders share one `fdatasync`. Gregor defaults
//! `flush.messages` to 1, so an acknowledged append is on disk (see `docs/divergences.md`).
//!
//! The crate has no network code; times are passed in as milliseconds so that behaviour tied to
//! the clock is testable.

pub mod checkpoint;
mod cleaner;
pub mod config;
mod error;
mod group_commit;
pub mod index;
mod leader_epoch;
mod log;
mod log_manager;
pub mod names;
pub mod producer_state;
mod reader;
mod segment;

pub use cleaner::{CleanerProgress, CleanerStats, LogCleaner};
pub use config::{CleanupPolicy, LogConfig};
pub use error::{LogError, Result};
pub use leader_epoch::{EpochEntry, LeaderEpochFileCache, UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET};
pub use log::{AppendInfo, LoadOptions, Log, SegmentSnapshot};
pub use log_manager::LogManager;
pub use names::TopicPartition;
pub use producer_state::{AbortedTxn, AppendOrigin, ProducerStateEntry};
pub use reader::{BatchPosition, FileSlice};
pub use segment::{IndexSettings, LogSegment};

//! `Partition`: one replica this broker hosts, and what it does in its current role.
//!
//! Kafka's ISR model: the leader appends producers' batches, followers copy them by fetching,
//! and the leader tracks each follower's log end offset from the offsets it fetches at. The
//! high watermark — the offset below which every in-sync replica has the records — is what
//! consumers may read up to and what `acks=all` waits for. A follower that has not caught up
//! for `replica.lag.time.max.ms` is dropped from the ISR, and one that caught up is added
//! back; both changes go through the controller (`AlterPartition`), and until the controller
//! has committed a shrink the leader keeps counting the member it wants to drop, so the high
//! watermark never moves past what the committed ISR holds.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gregor_log::{AppendInfo, AppendOrigin, Log, LogError, TopicPartition};
use gregor_metadata::controller::IsrChange;
use gregor_metadata::image::PartitionState;
use gregor_metadata::records::BrokerId;
use gregor_protocol::ErrorCode;
use gregor_protocol::batch::EndTransactionMarker;
use parking_lot::Mutex;
use tokio::sync::watch;
use uuid::Uuid;

/// What this replica does now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Takes produce requests and serves fetches.
    Leader,
    /// Copies from `leader`.
    Follower {
        /// The leader it fetches from.
        leader: BrokerId,
    },
    /// No leader is known (all in-sync replicas are down): serves nothing.
    Offline,
}

/// The leader's view of one follower.
#[derive(Debug, Clone, Copy)]
struct FollowerState {
    /// Its log end offset as its last fetch showed (-1 until it fetches).
    log_end_offset: i64,
    /// When it last had everything the leader had (Kafka's `lastCaughtUpTimeMs`).
    last_caught_up_ms: i64,
    /// When it last fetched, and the leader's log end offset then.
    last_fetch_ms: i64,
    last_fetch_leader_leo: i64,
}

/// What waiters for the high watermark watch: it, and whether the leadership they appended
/// under still holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// High watermark.
    pub high_watermark: i64,
    /// Leader epoch this replica is in.
    pub leader_epoch: i32,
    /// Whether it leads.
    pub leader: bool,
    /// In-sync replicas (committed by the controller).
    pub isr_size: usize,
}

struct State {
    role: Role,
    leader_epoch: i32,
    partition_epoch: i32,
    replicas: Vec<BrokerId>,
    isr: Vec<BrokerId>,
    high_watermark: i64,
    followers: HashMap<BrokerId, FollowerState>,
    /// ISR asked of the controller and not answered yet: at most one change in flight.
    pending_isr: Option<Vec<BrokerId>>,
    /// When the controller last refused an ISR change: the next ask waits a little, so a
    /// leader with a stale view does not flood the controller before the metadata arrives.
    refused_at: Option<Instant>,
}

/// Pause after a refused ISR change.
const ISR_RETRY: Duration = Duration::from_millis(200);

/// Why a produce was refused before touching the log, or the log's own refusal.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Not the leader (anymore).
    #[error("this broker is not the leader of the partition")]
    NotLeader,
    /// `acks=all` and fewer in-sync replicas than `min.insync.replicas`.
    #[error("the ISR has {isr} replica(s), fewer than min.insync.replicas={min}")]
    NotEnoughReplicas {
        /// ISR size.
        isr: usize,
        /// `min.insync.replicas`.
        min: i32,
    },
    /// The log refused the batch.
    #[error(transparent)]
    Log(#[from] LogError),
}

impl AppendError {
    /// The Kafka error code for the client.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            AppendError::NotLeader => ErrorCode::NOT_LEADER_OR_FOLLOWER,
            AppendError::NotEnoughReplicas { .. } => ErrorCode::NOT_ENOUGH_REPLICAS,
            AppendError::Log(e) => e.error_code(),
        }
    }
}

/// Whether a new ISR change may be asked now: none in flight, and no refusal just now.
fn may_ask(state: &State) -> bool {
    state.pending_isr.is_none() && state.refused_at.is_none_or(|t| t.elapsed() >= ISR_RETRY)
}

/// One hosted replica; see the module docs.
pub struct Partition {
    tp: TopicPartition,
    topic_id: Uuid,
    node_id: BrokerId,
    log: Arc<Log>,
    state: Mutex<State>,
    progress: watch::Sender<Progress>,
}

impl Partition {
    /// A replica over `log`, with no role until the metadata gives it one. `high_watermark`
    /// comes from the `replication-offset-checkpoint` (clamped to the log).
    pub fn new(
        tp: TopicPartition,
        topic_id: Uuid,
        node_id: BrokerId,
        log: Arc<Log>,
        high_watermark: i64,
    ) -> Partition {
        let high_watermark = high_watermark
            .clamp(log.log_start_offset(), log.log_end_offset())
            .max(0);
        let (progress, _) = watch::channel(Progress {
            high_watermark,
            leader_epoch: -1,
            leader: false,
            isr_size: 0,
        });
        Partition {
            tp,
            topic_id,
            node_id,
            log,
            state: Mutex::new(State {
                role: Role::Offline,
                leader_epoch: -1,
                partition_epoch: -1,
                replicas: Vec::new(),
                isr: Vec::new(),
                high_watermark,
                followers: HashMap::new(),
                pending_isr: None,
                refused_at: None,
            }),
            progress,
        }
    }

    /// Topic and partition.
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.tp
    }

    /// Topic id.
    pub fn topic_id(&self) -> Uuid {
        self.topic_id
    }

    /// The replica's log.
    pub fn log(&self) -> &Arc<Log> {
        &self.log
    }

    /// Current leader epoch (-1 before the metadata gave one).
    pub fn leader_epoch(&self) -> i32 {
        self.state.lock().leader_epoch
    }

    /// High watermark: consumers read below it.
    pub fn high_watermark(&self) -> i64 {
        self.state.lock().high_watermark
    }

    /// Watches the high watermark and leadership (for `acks=all` waits).
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// Applies the partition's state from the metadata image. Returns the new role when it
    /// changed (a new leader or a new leader epoch), `None` when only the ISR or replica list
    /// moved on.
    pub fn apply_metadata(&self, image: &PartitionState, now_ms: i64) -> Option<Role> {
        let mut state = self.state.lock();
        let role = if image.leader == self.node_id {
            Role::Leader
        } else if image.has_leader() {
            Role::Follower {
                leader: image.leader,
            }
        } else {
            Role::Offline
        };
        let changed = role != state.role || image.leader_epoch != state.leader_epoch;
        if !changed && image.partition_epoch < state.partition_epoch {
            // An image older than an ISR change the controller already answered us about
            // (Kafka's "already at a newer partition epoch"): adopting it would undo that
            // change, e.g. drop a member the controller counts as in sync.
            return None;
        }
        if changed || image.partition_epoch > state.partition_epoch {
            // The partition changed (possibly by our own request): a change still in flight
            // is answered or moot. Otherwise it stays pending, and keeps counting in the
            // high watermark, until the controller answers.
            state.pending_isr = None;
        }
        state.replicas = image.replicas.clone();
        state.isr = image.isr.clone();
        state.partition_epoch = image.partition_epoch;
        if changed {
            state.role = role;
            state.leader_epoch = image.leader_epoch;
            state.followers.clear();
            if role == Role::Leader {
                // Kafka's `maybeAssignEpochStartOffset`: the new epoch starts at the log end.
                if let Err(e) = self
                    .log
                    .assign_epoch_start_offset(image.leader_epoch, self.log.log_end_offset())
                {
                    tracing::warn!(partition = %self.tp, error = %e, "cannot record leader epoch");
                }
                let followers: Vec<BrokerId> = state
                    .replicas
                    .iter()
                    .copied()
                    .filter(|&r| r != self.node_id)
                    .collect();
                for replica in followers {
                    state.followers.insert(
                        replica,
                        FollowerState {
                            log_end_offset: -1,
                            last_caught_up_ms: now_ms,
                            last_fetch_ms: 0,
                            last_fetch_leader_leo: -1,
                        },
                    );
                }
            }
            let end = self.log.log_end_offset();
            state.high_watermark = state.high_watermark.min(end);
        } else if role == Role::Leader {
            // Replicas added by a reassignment start being tracked.
            for &replica in image.replicas.iter().filter(|&&r| r != self.node_id) {
                state.followers.entry(replica).or_insert(FollowerState {
                    log_end_offset: -1,
                    last_caught_up_ms: now_ms,
                    last_fetch_ms: 0,
                    last_fetch_leader_leo: -1,
                });
            }
        }
        if state.role == Role::Leader {
            self.advance_high_watermark(&mut state);
        }
        self.publish(&state);
        changed.then_some(role)
    }

    /// Appends a producer's batch as leader (`origin`: a client's, or a coordinator's own
    /// transactional offset commit). `min_insync` applies only to `acks=all`.
    pub fn append_as_leader(
        &self,
        records: &mut [u8],
        acks: i16,
        min_insync: i32,
        origin: AppendOrigin,
        now_ms: i64,
    ) -> Result<(AppendInfo, i32), AppendError> {
        self.append_with(acks, min_insync, |log, epoch| match origin {
            AppendOrigin::Coordinator => log.append_as_coordinator(records, epoch, now_ms),
            _ => log.append_as_leader(records, epoch, now_ms),
        })
    }

    /// Writes a transaction marker as leader (WriteTxnMarkers); like an `acks=all` produce, it
    /// needs `min_insync` in-sync replicas.
    pub fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        marker: EndTransactionMarker,
        min_insync: i32,
        now_ms: i64,
    ) -> Result<(AppendInfo, i32), AppendError> {
        self.append_with(-1, min_insync, |log, epoch| {
            log.append_marker_as_leader(producer_id, producer_epoch, marker, epoch, now_ms)
        })
    }

    fn append_with(
        &self,
        acks: i16,
        min_insync: i32,
        append: impl FnOnce(&Log, i32) -> Result<AppendInfo, LogError>,
    ) -> Result<(AppendInfo, i32), AppendError> {
        let mut state = self.state.lock();
        if state.role != Role::Leader {
            return Err(AppendError::NotLeader);
        }
        if acks == -1 && (state.isr.len() as i32) < min_insync {
            return Err(AppendError::NotEnoughReplicas {
                isr: state.isr.len(),
                min: min_insync,
            });
        }
        let info = append(&self.log, state.leader_epoch)?;
        self.advance_high_watermark(&mut state);
        self.publish(&state);
        Ok((info, state.leader_epoch))
    }

    /// Last stable offset: below both the high watermark and the first record of any open
    /// transaction. `read_committed` consumers read below it.
    pub fn last_stable_offset(&self) -> i64 {
        let high_watermark = self.high_watermark();
        self.log
            .first_unstable_offset()
            .map_or(high_watermark, |first| first.min(high_watermark))
    }

    /// Checks a client's `current_leader_epoch` (-1: not given) against ours, as Kafka does
    /// for Fetch, ListOffsets and OffsetForLeaderEpoch.
    pub fn check_leader_epoch(&self, requested: i32) -> Result<(), ErrorCode> {
        let ours = self.state.lock().leader_epoch;
        match requested {
            -1 => Ok(()),
            e if e < ours => Err(ErrorCode::FENCED_LEADER_EPOCH),
            e if e > ours => Err(ErrorCode::UNKNOWN_LEADER_EPOCH),
            _ => Ok(()),
        }
    }

    /// Whether this replica leads; `NOT_LEADER_OR_FOLLOWER` otherwise.
    pub fn check_leader(&self) -> Result<(), ErrorCode> {
        match self.state.lock().role {
            Role::Leader => Ok(()),
            _ => Err(ErrorCode::NOT_LEADER_OR_FOLLOWER),
        }
    }

    /// A follower fetched at `fetch_offset`: it has everything below it. Updates its progress,
    /// may advance the high watermark, and returns an ISR expansion to ask the controller for
    /// when it caught up and may join (`eligible`: registered and unfenced, as Kafka requires).
    /// `Err` when `replica` is not a replica of ours to lead.
    pub fn record_follower_fetch(
        &self,
        replica: BrokerId,
        fetch_offset: i64,
        eligible: bool,
        now_ms: i64,
    ) -> Result<(bool, Option<IsrChange>), ErrorCode> {
        let mut state = self.state.lock();
        if state.role != Role::Leader {
            return Err(ErrorCode::NOT_LEADER_OR_FOLLOWER);
        }
        let leo = self.log.log_end_offset();
        let Some(follower) = state.followers.get_mut(&replica) else {
            return Err(ErrorCode::NOT_LEADER_OR_FOLLOWER);
        };
        if fetch_offset >= leo {
            follower.last_caught_up_ms = now_ms;
        } else if fetch_offset >= follower.last_fetch_leader_leo && follower.last_fetch_ms > 0 {
            follower.last_caught_up_ms = follower.last_caught_up_ms.max(follower.last_fetch_ms);
        }
        follower.log_end_offset = fetch_offset.min(leo);
        follower.last_fetch_ms = now_ms;
        follower.last_fetch_leader_leo = leo;
        let before = state.high_watermark;
        let expand = if eligible {
            self.maybe_expand_isr(&mut state, replica)
        } else {
            None
        };
        self.advance_high_watermark(&mut state);
        self.publish(&state);
        Ok((state.high_watermark > before, expand))
    }

    /// Kafka's rule for rejoining: the follower has reached the high watermark and the start
    /// of the current leader epoch.
    fn maybe_expand_isr(&self, state: &mut State, replica: BrokerId) -> Option<IsrChange> {
        if !may_ask(state) || state.isr.contains(&replica) {
            return None;
        }
        let follower = state.followers.get(&replica)?;
        let epoch_start = self
            .log
            .end_offset_for_epoch(state.leader_epoch - 1)
            .1
            .max(0);
        if follower.log_end_offset < state.high_watermark || follower.log_end_offset < epoch_start {
            return None;
        }
        let mut isr = state.isr.clone();
        isr.push(replica);
        Some(self.request_isr(state, isr))
    }

    /// Followers in the ISR that have not caught up for `lag_max_ms` are dropped: returns the
    /// shrink to ask the controller for, if any.
    pub fn maybe_shrink_isr(&self, now_ms: i64, lag_max_ms: i64) -> Option<IsrChange> {
        let mut state = self.state.lock();
        if state.role != Role::Leader || !may_ask(&state) {
            return None;
        }
        let leo = self.log.log_end_offset();
        let lagging: Vec<BrokerId> = state
            .isr
            .iter()
            .copied()
            .filter(|r| *r != self.node_id)
            .filter(|r| {
                // Kafka's `isCaughtUp`: at the log end, or caught up within the lag bound.
                state.followers.get(r).is_none_or(|f| {
                    f.log_end_offset != leo && now_ms - f.last_caught_up_ms > lag_max_ms
                })
            })
            .collect();
        if lagging.is_empty() {
            return None;
        }
        let isr: Vec<BrokerId> = state
            .isr
            .iter()
            .copied()
            .filter(|r| !lagging.contains(r))
            .collect();
        tracing::info!(partition = %self.tp, ?lagging, "shrinking ISR: followers not caught up for replica.lag.time.max.ms");
        Some(self.request_isr(&mut state, isr))
    }

    fn request_isr(&self, state: &mut State, isr: Vec<BrokerId>) -> IsrChange {
        state.pending_isr = Some(isr.clone());
        IsrChange {
            topic_id: self.topic_id,
            partition: self.tp.partition,
            leader_epoch: state.leader_epoch,
            new_isr: isr,
            partition_epoch: state.partition_epoch,
        }
    }

    /// The controller answered an ISR change: adopt what it committed (if it is still about
    /// our leadership), or forget the request so it can be asked again.
    pub fn isr_change_done(&self, outcome: Option<(i32, Vec<BrokerId>, i32)>) {
        let mut state = self.state.lock();
        state.pending_isr = None;
        state.refused_at = outcome.is_none().then(Instant::now);
        if let Some((leader_epoch, isr, partition_epoch)) = outcome
            && leader_epoch == state.leader_epoch
            && partition_epoch > state.partition_epoch
        {
            state.isr = isr;
            state.partition_epoch = partition_epoch;
            self.advance_high_watermark(&mut state);
        }
        self.publish(&state);
    }

    /// High watermark = the smallest log end offset among the leader and every ISR member,
    /// including one whose removal is still pending (Kafka's "maximal ISR").
    fn advance_high_watermark(&self, state: &mut State) {
        let mut hw = self.log.log_end_offset();
        let members = state.isr.iter().chain(state.pending_isr.iter().flatten());
        for member in members.filter(|m| **m != self.node_id) {
            let pending_add = !state.isr.contains(member);
            let leo = state.followers.get(member).map_or(-1, |f| f.log_end_offset);
            if pending_add && leo < state.high_watermark {
                continue;
            }
            hw = hw.min(leo);
        }
        if hw > state.high_watermark {
            state.high_watermark = hw;
        }
    }

    /// Follower side: appends what the leader sent and takes its high watermark — only while
    /// this replica still follows in `leader_epoch` (a fetch answered after a leadership
    /// change must not land). Returns false when it no longer does.
    pub fn append_as_follower(
        &self,
        records: &[u8],
        leader_epoch: i32,
        leader_high_watermark: i64,
        now_ms: i64,
    ) -> Result<bool, LogError> {
        let mut state = self.state.lock();
        if !matches!(state.role, Role::Follower { .. }) || state.leader_epoch != leader_epoch {
            return Ok(false);
        }
        let info = if records.is_empty() {
            None
        } else {
            Some(self.log.append_as_follower(records)?)
        };
        let end = self.log.log_end_offset();
        state.high_watermark = leader_high_watermark
            .min(end)
            .max(state.high_watermark.min(end));
        self.publish(&state);
        drop(state);
        if let Some(info) = info {
            self.log.flush_if_required(&info, now_ms)?;
        }
        Ok(true)
    }

    /// Follower side: removes a divergent suffix (after OffsetForLeaderEpoch), if this replica
    /// still follows in `leader_epoch`. Returns the new log end offset.
    pub fn truncate_to(
        &self,
        offset: i64,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<Option<i64>, LogError> {
        let mut state = self.state.lock();
        if !matches!(state.role, Role::Follower { .. }) || state.leader_epoch != leader_epoch {
            return Ok(None);
        }
        let end = self.log.truncate_to(offset, now_ms)?;
        state.high_watermark = state.high_watermark.min(end);
        self.publish(&state);
        Ok(Some(end))
    }

    /// The partition is no longer hosted here: waiters learn it has no leadership.
    pub fn retire(&self) {
        let mut state = self.state.lock();
        state.role = Role::Offline;
        state.followers.clear();
        self.publish(&state);
    }

    fn publish(&self, state: &State) {
        let progress = Progress {
            high_watermark: state.high_watermark,
            leader_epoch: state.leader_epoch,
            leader: state.role == Role::Leader,
            isr_size: state.isr.len(),
        };
        self.progress.send_if_modified(|p| {
            let changed = *p != progress;
            *p = progress;
            changed
        });
    }
}

//! `InternalTopic`: a compacted topic a coordinator keeps its state in (`__consumer_offsets`,
//! `__transaction_state`).
//!
//! Coordinators are state machines fed by their log. Each one needs the same three things,
//! which live here so that every coordinator gets them right the same way:
//! - the topic is created on first use (as Kafka does), compacted, with the coordinator's
//!   replication factor capped at the live brokers (a one-broker cluster must still work) and,
//!   when asked, `min.insync.replicas` capped at that replication factor;
//! - a write goes through the partition's leader like a producer's `acks=all` and returns once
//!   every in-sync replica has it, so a coordinator elected from the ISR knows every answered
//!   change;
//! - a partition is replayed oldest first when its coordinator moves here, data records and
//!   transaction markers alike (transactional offset commits only count once committed).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gregor_log::{AppendOrigin, TopicPartition};
use gregor_protocol::ErrorCode;
use gregor_protocol::batch::{
    BatchIter, Compression, ControlRecordType, EndTransactionMarker, Record, RecordBatchBuilder,
};

use crate::replica::ReplicaManager;
use crate::topics::TopicRegistry;

/// How long a write may wait for the in-sync replicas (Kafka's `offsets.commit.timeout.ms`
/// and `transaction.state.log` writes use the same order of magnitude).
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// How much of a partition replay reads at once.
const REPLAY_CHUNK: usize = 1 << 20;

/// What an internal topic is made of when it is created.
#[derive(Debug, Clone)]
pub struct InternalTopicSpec {
    /// The topic's name.
    pub name: &'static str,
    /// Partitions when created (`*.num.partitions`); once created the topic's own count wins.
    pub partitions: i32,
    /// Wanted replicas (`*.replication.factor`), capped at the live brokers at creation.
    pub replication_factor: i16,
    /// Wanted `min.insync.replicas` (`transaction.state.log.min.isr`), capped at the
    /// replication factor; `None` leaves the broker default.
    pub min_insync_replicas: Option<i32>,
    /// `segment.bytes` (`*.segment.bytes`): small, so compaction can clean often.
    pub segment_bytes: u64,
    /// Further topic configs the coordinator needs (they win over the defaults here).
    pub extra_configs: &'static [(&'static str, &'static str)],
}

/// Why an internal topic could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum InternalTopicError {
    /// Creating the topic failed.
    #[error("cannot create {topic}: {message}")]
    Create {
        /// The topic.
        topic: &'static str,
        /// What the controller said.
        message: String,
    },
    /// This broker does not lead the partition (anymore).
    #[error("{topic}-{partition} is not led by this broker")]
    NotLeader {
        /// The topic.
        topic: &'static str,
        /// The partition.
        partition: i32,
    },
    /// The in-sync replicas did not confirm the write.
    #[error("{topic}-{partition}: replication failed: {code:?}")]
    Replication {
        /// The topic.
        topic: &'static str,
        /// The partition.
        partition: i32,
        /// Why.
        code: ErrorCode,
    },
    /// The log refused a transactional write for the producer's sake (a fenced epoch, a
    /// transaction in the wrong state): the client is told why.
    #[error("{topic}-{partition}: {message}")]
    Refused {
        /// The topic.
        topic: &'static str,
        /// The partition.
        partition: i32,
        /// The producer's error.
        code: ErrorCode,
        /// What the log said.
        message: String,
    },
    /// The log refused the append or read.
    #[error("{topic}-{partition}: {message}")]
    Log {
        /// The topic.
        topic: &'static str,
        /// The partition.
        partition: i32,
        /// What the log said.
        message: String,
    },
}

impl InternalTopicError {
    /// What a client is told: `NOT_COORDINATOR` when it should look for the new coordinator,
    /// the producer's error when its write was refused, else the coordinator cannot serve it
    /// right now.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            InternalTopicError::NotLeader { .. } => ErrorCode::NOT_COORDINATOR,
            InternalTopicError::Refused { code, .. } => *code,
            _ => ErrorCode::COORDINATOR_NOT_AVAILABLE,
        }
    }
}

/// One record to write: a key and a value (`None`: a tombstone).
#[derive(Debug, Clone, PartialEq)]
pub struct InternalRecord {
    /// The record key (a coordinator key: compaction keeps the latest per key).
    pub key: Vec<u8>,
    /// The value, or `None` to delete what the key names.
    pub value: Option<Vec<u8>>,
}

/// The producer a batch is written for: a transactional offset commit is part of the
/// producer's transaction and only counts once its commit marker follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransactionalProducer {
    /// The producer id.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i16,
}

/// What replay hands a coordinator, in log order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Replayed<'a> {
    /// A keyed data record.
    Data {
        /// The record key.
        key: &'a [u8],
        /// The value, `None` for a tombstone.
        value: Option<&'a [u8]>,
        /// The record's offset in the partition (a coordinator may order writes by it).
        offset: i64,
        /// The batch's producer id (-1 for none).
        producer_id: i64,
        /// Whether the batch is part of a transaction.
        transactional: bool,
    },
    /// An end-of-transaction marker.
    Marker {
        /// The producer whose transaction ended.
        producer_id: i64,
        /// Committed (else aborted).
        commit: bool,
    },
}

/// Reads and writes one internal topic; see the module docs.
pub struct InternalTopic {
    spec: InternalTopicSpec,
    replicas: Arc<ReplicaManager>,
    topics: Arc<TopicRegistry>,
    /// The runtime blocking callers wait on (controller and replication).
    runtime: tokio::runtime::Handle,
}

impl InternalTopic {
    /// The topic described by `spec`, created on the first write or [`Self::ensure_created`].
    /// Must be called within the broker's runtime.
    pub fn new(
        spec: InternalTopicSpec,
        replicas: Arc<ReplicaManager>,
        topics: Arc<TopicRegistry>,
    ) -> InternalTopic {
        InternalTopic {
            spec,
            replicas,
            topics,
            runtime: tokio::runtime::Handle::current(),
        }
    }

    /// Partitions of the topic: as created if it exists (a later config change must not move
    /// keys between partitions), else as configured.
    pub fn partitions(&self) -> i32 {
        self.topics
            .get(self.spec.name)
            .map_or(self.spec.partitions, |t| t.partitions)
    }

    /// Creates the topic if it does not exist yet. Blocks on the controller: call from a
    /// blocking thread.
    pub fn ensure_created(&self) -> Result<(), InternalTopicError> {
        let name = self.spec.name;
        if self.topics.get(name).is_some() {
            return Ok(());
        }
        let live = self.replicas.image().live_brokers().count().max(1);
        let replication_factor = self
            .spec
            .replication_factor
            .min(i16::try_from(live).unwrap_or(i16::MAX));
        let mut configs = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            (
                "segment.bytes".to_string(),
                self.spec.segment_bytes.to_string(),
            ),
            ("compression.type".to_string(), "producer".to_string()),
        ]);
        for (key, value) in self.spec.extra_configs {
            configs.insert((*key).to_string(), (*value).to_string());
        }
        if let Some(min_isr) = self.spec.min_insync_replicas {
            let min_isr = min_isr.min(i32::from(replication_factor));
            configs.insert("min.insync.replicas".to_string(), min_isr.to_string());
        }
        let create = self.topics.create(
            name,
            self.spec.partitions,
            replication_factor,
            BTreeMap::new(),
            configs,
            false,
        );
        match self.runtime.block_on(create) {
            Ok(_) => Ok(()),
            Err(_) if self.topics.get(name).is_some() => Ok(()),
            Err(e) => Err(InternalTopicError::Create {
                topic: name,
                message: e.to_string(),
            }),
        }
    }

    /// Appends `records` to `partition` as one batch and waits until every in-sync replica has
    /// them; `producer` names the producer whose transaction the batch belongs to (a
    /// transactional offset commit), which Kafka marks on the batch so the transaction's marker
    /// settles it. Returns the offset of the first record (the others follow it one by one),
    /// `None` when there was nothing to write. Blocks: call from a blocking thread.
    pub fn append(
        &self,
        partition: i32,
        records: &[InternalRecord],
        producer: Option<TransactionalProducer>,
        now_ms: i64,
    ) -> Result<Option<i64>, InternalTopicError> {
        if records.is_empty() {
            return Ok(None);
        }
        self.ensure_created()?;
        let topic = self.spec.name;
        let tp = TopicPartition::new(topic, partition);
        let not_leader = || InternalTopicError::NotLeader { topic, partition };
        let leader = self
            .replicas
            .leader_partition(&tp)
            .map_err(|_| not_leader())?;
        let failed = |e: &dyn std::fmt::Display| InternalTopicError::Log {
            topic,
            partition,
            message: e.to_string(),
        };
        let mut builder = RecordBatchBuilder::new(0, Compression::None);
        if let Some(p) = producer {
            // Kafka's coordinator writes its transactional batches with sequence 0.
            builder = builder
                .producer(p.producer_id, p.producer_epoch, 0)
                .transactional(true);
        }
        for (i, record) in records.iter().enumerate() {
            builder.append(
                i as i64,
                now_ms,
                Some(&record.key),
                record.value.as_deref(),
                &[],
            );
        }
        let mut batch = builder.build().map_err(|e| failed(&e))?;
        let min_insync = self.replicas.min_insync_replicas(topic);
        // Transactional writes are checked against the producer's epoch (a fenced producer's
        // write is refused), but carry no sequence of the producer's own.
        let origin = if producer.is_some() {
            AppendOrigin::Coordinator
        } else {
            AppendOrigin::Client
        };
        let (info, epoch) = leader
            .append_as_leader(&mut batch, -1, min_insync, origin, now_ms)
            .map_err(|e| match e.error_code() {
                ErrorCode::NOT_LEADER_OR_FOLLOWER => not_leader(),
                code @ (ErrorCode::INVALID_PRODUCER_EPOCH | ErrorCode::INVALID_TXN_STATE) => {
                    InternalTopicError::Refused {
                        topic,
                        partition,
                        code,
                        message: e.to_string(),
                    }
                }
                _ => failed(&e),
            })?;
        leader
            .log()
            .flush_if_required(&info, now_ms)
            .map_err(|e| failed(&e))?;
        self.replicas.wake_fetches();
        let replicated = ReplicaManager::wait_for_replication(
            &leader,
            info.last_offset,
            epoch,
            min_insync,
            WRITE_TIMEOUT,
        );
        self.runtime
            .block_on(replicated)
            .map_err(|code| match code {
                ErrorCode::NOT_LEADER_OR_FOLLOWER => not_leader(),
                code => InternalTopicError::Replication {
                    topic,
                    partition,
                    code,
                },
            })?;
        Ok(Some(info.first_offset))
    }

    /// The leader epoch of `partition` while this broker leads it (a coordinator's epoch).
    pub fn leader_epoch(&self, partition: i32) -> Option<i32> {
        self.replicas
            .leader_partition(&TopicPartition::new(self.spec.name, partition))
            .ok()
            .map(|p| p.leader_epoch())
    }

    /// Calls `visit` with every keyed record and transaction marker of `partition`, oldest
    /// first. Unkeyed records and other control records are skipped; a marker that cannot be
    /// read is logged and skipped, so one bad record cannot keep a partition from loading.
    pub fn replay(
        &self,
        partition: i32,
        mut visit: impl FnMut(Replayed<'_>),
    ) -> Result<(), InternalTopicError> {
        let topic = self.spec.name;
        let Some(log) = self
            .replicas
            .logs()
            .get_log(&TopicPartition::new(topic, partition))
        else {
            return Ok(());
        };
        let failed = |e: &dyn std::fmt::Display| InternalTopicError::Log {
            topic,
            partition,
            message: e.to_string(),
        };
        let mut offset = log.log_start_offset();
        while offset < log.log_end_offset() {
            let Some(slice) = log
                .read(offset, REPLAY_CHUNK, None, true)
                .map_err(|e| failed(&e))?
            else {
                break;
            };
            let bytes = slice.read_to_vec().map_err(|e| failed(&e))?;
            let mut next = offset;
            for batch in BatchIter::new(&bytes) {
                let batch = batch.map_err(|e| failed(&e))?;
                next = batch.last_offset() + 1;
                let attributes = batch.attributes();
                let producer_id = batch.producer_id();
                for record in batch.records().map_err(|e| failed(&e))? {
                    if attributes.is_control() {
                        if let Some(commit) = transaction_marker(&record) {
                            visit(Replayed::Marker {
                                producer_id,
                                commit,
                            });
                        }
                        continue;
                    }
                    let Some(key) = record.key.as_deref() else {
                        continue;
                    };
                    visit(Replayed::Data {
                        key,
                        value: record.value.as_deref(),
                        offset: record.offset(batch.base_offset()),
                        producer_id,
                        transactional: attributes.is_transactional(),
                    });
                }
            }
            if next <= offset {
                break;
            }
            offset = next;
        }
        Ok(())
    }
}

/// Whether a control record is a commit (`Some(true)`) or an abort (`Some(false)`) marker;
/// `None` for other control records and for markers that cannot be read (logged).
fn transaction_marker(record: &Record) -> Option<bool> {
    if !matches!(
        record.control_type(),
        Ok(ControlRecordType::Commit | ControlRecordType::Abort)
    ) {
        return None;
    }
    match EndTransactionMarker::from_record(record) {
        Ok(marker) => Some(marker.control_type == ControlRecordType::Commit),
        Err(e) => {
            tracing::warn!(error = %e, "skipping an unreadable transaction marker");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;

    const T0: i64 = 1_700_000_000_000;

    /// What a replay visit saw, owned.
    #[derive(Debug, PartialEq)]
    enum Seen {
        Data(Vec<u8>, Option<Vec<u8>>, i64, i64, bool),
        Marker(i64, bool),
    }

    #[test]
    fn appends_and_replays_data_and_markers_with_their_producers() {
        let dir = tempfile::tempdir().unwrap();
        let (runtime, node) = crate::node::start_on_own_runtime(BrokerConfig {
            log_dirs: vec![dir.path().to_path_buf()],
            ..BrokerConfig::default()
        });
        let broker = Arc::clone(&node.broker);
        let topic = runtime.block_on(async {
            InternalTopic::new(
                InternalTopicSpec {
                    name: "__internal_test",
                    partitions: 2,
                    replication_factor: 3,
                    min_insync_replicas: Some(2),
                    segment_bytes: 1 << 20,
                    extra_configs: &[("unclean.leader.election.enable", "false")],
                },
                Arc::clone(&broker.replicas),
                Arc::clone(&broker.topics),
            )
        });
        let seen = runtime
            .block_on(runtime.spawn_blocking(move || {
                assert_eq!(topic.partitions(), 2);
                let record = |k: &[u8], v: Option<&[u8]>| InternalRecord {
                    key: k.to_vec(),
                    value: v.map(<[u8]>::to_vec),
                };
                // The first append creates the topic (capped at the one live broker) and waits
                // until this broker leads the partition.
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
                loop {
                    match topic.append(1, &[record(b"a", Some(b"1"))], None, T0) {
                        Ok(first) => {
                            assert_eq!(first, Some(0));
                            break;
                        }
                        Err(InternalTopicError::NotLeader { .. })
                            if std::time::Instant::now() < deadline =>
                        {
                            std::thread::sleep(std::time::Duration::from_millis(10))
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                let image = broker.replicas.image();
                assert_eq!(
                    image.topic_config("__internal_test", "cleanup.policy"),
                    Some("compact")
                );
                assert_eq!(
                    image.topic_config("__internal_test", "unclean.leader.election.enable"),
                    Some("false")
                );
                assert_eq!(
                    image.topic_config("__internal_test", "min.insync.replicas"),
                    Some("1"),
                    "capped at the replication factor"
                );
                assert_eq!(
                    image
                        .partition("__internal_test", 1)
                        .unwrap()
                        .replicas
                        .len(),
                    1
                );
                let producer = TransactionalProducer {
                    producer_id: 42,
                    producer_epoch: 3,
                };
                let first = topic
                    .append(
                        1,
                        &[record(b"b", Some(b"2")), record(b"a", None)],
                        Some(producer),
                        T0,
                    )
                    .unwrap();
                assert_eq!(first, Some(1), "the first record's offset");
                assert_eq!(topic.append(1, &[], Some(producer), T0).unwrap(), None);
                // A commit marker for producer 42, as a partition leader writes it (placed
                // straight into the log: producers may not append control batches).
                let leader = broker
                    .replicas
                    .leader_partition(&TopicPartition::new("__internal_test", 1))
                    .unwrap();
                let end = leader.log().log_end_offset();
                let mut marker = RecordBatchBuilder::new(end, Compression::None)
                    .producer(42, 3, -1)
                    .transactional(true)
                    .control(true)
                    .partition_leader_epoch(leader.leader_epoch());
                let value = EndTransactionMarker {
                    control_type: ControlRecordType::Commit,
                    coordinator_epoch: 0,
                }
                .value_bytes();
                marker.append(
                    end,
                    T0,
                    Some(&ControlRecordType::Commit.key_bytes()),
                    Some(&value),
                    &[],
                );
                let marker = marker.build().unwrap();
                leader.log().append_as_follower(&marker).unwrap();
                assert_eq!(
                    topic.leader_epoch(1),
                    Some(leader.leader_epoch()),
                    "the coordinator epoch is the leader epoch"
                );
                let mut seen = Vec::new();
                topic
                    .replay(1, |r| {
                        seen.push(match r {
                            Replayed::Data {
                                key,
                                value,
                                offset,
                                producer_id,
                                transactional,
                            } => Seen::Data(
                                key.to_vec(),
                                value.map(<[u8]>::to_vec),
                                offset,
                                producer_id,
                                transactional,
                            ),
                            Replayed::Marker {
                                producer_id,
                                commit,
                            } => Seen::Marker(producer_id, commit),
                        })
                    })
                    .unwrap();
                let mut empty = 0;
                topic.replay(0, |_| empty += 1).unwrap();
                assert_eq!(empty, 0);
                seen
            }))
            .unwrap();
        assert_eq!(
            seen,
            vec![
                Seen::Data(b"a".to_vec(), Some(b"1".to_vec()), 0, -1, false),
                Seen::Data(b"b".to_vec(), Some(b"2".to_vec()), 1, 42, true),
                Seen::Data(b"a".to_vec(), None, 2, 42, true),
                Seen::Marker(42, true),
            ]
        );
        runtime.block_on(node.close()).unwrap();
    }
}

//! The key and value schemas of the `__consumer_offsets` topic.
//!
//! The group coordinator is a state machine fed by its log: every change to a group (an offset
//! commit, a classic group's new generation, a KIP-848 member joining or getting a new
//! assignment) is written as one record to the group's partition of `__consumer_offsets`, and
//! replaying that partition rebuilds the coordinator's state after a restart or a leader change.
//! The records use Kafka's own schemas, byte for byte, so that Kafka's tooling
//! (`kafka-dump-log --offsets-decoder`, `kafka-console-consumer` with the offsets formatters,
//! Cruise Control…) can read Gregor's topic, and a Kafka broker's topic could be replayed here.
//!
//! Every record key starts with an `int16` *key version* that says which record type it is, and
//! the key struct follows in the non-flexible encoding. Every value starts with an `int16`
//! *value version* (the schema version of that record type's value struct); a null value is a
//! tombstone, deleting what its key names. The key versions Kafka defines:
//!
//! | key version | record | kept by Gregor |
//! |---|---|---|
//! | 0, 1 | offset commit | yes |
//! | 2 | classic group metadata | yes |
//! | 3 | consumer group (KIP-848) metadata: the group epoch | yes |
//! | 4 | consumer group partition metadata | no, skipped on replay |
//! | 5 | consumer group member metadata | yes |
//! | 6, 7 | consumer group target assignment | no, skipped on replay |
//! | 8 | consumer group member's current assignment | yes |
//! | 9 and up | share groups, streams groups | no, skipped on replay |
//!
//! Decoding never panics and never allocates more than the input's own size justifies: every
//! length and count read from the bytes is checked against what remains before anything is
//! reserved, because a corrupted or hostile segment must fail replay cleanly, not crash it.

use bytes::{BufMut, Bytes, BytesMut};
use uuid::Uuid;

use crate::record_reader::{MAX_STRING_LEN, ReadError, Reader};

/// Key version of an offset commit key written by Kafka before 0.10.1 (same layout as 1).
const OFFSET_COMMIT_KEY_V0: i16 = 0;
/// Key version Gregor (like Kafka) writes for offset commits.
const OFFSET_COMMIT_KEY_V1: i16 = 1;
/// Key version of a classic group's metadata.
const GROUP_METADATA_KEY: i16 = 2;
/// Key version of a consumer group's metadata (its epoch).
const CONSUMER_GROUP_METADATA_KEY: i16 = 3;
/// Key version of a consumer group member's metadata.
const CONSUMER_GROUP_MEMBER_KEY: i16 = 5;
/// Key version of a consumer group member's current assignment.
const CONSUMER_GROUP_ASSIGNMENT_KEY: i16 = 8;
/// Highest key version Kafka is known to define (share groups use 9–15; Kafka 4.x streams
/// groups take the versions after them). Gregor keeps none of those record types, so replay
/// skips them; a key version above this is reported as unknown.
const HIGHEST_SKIPPED_KEY: i16 = 22;

/// Value version written for an offset commit without an expire timestamp.
const OFFSET_COMMIT_VALUE_WRITE: i16 = 3;
/// Value version written for an offset commit that carries an expire timestamp: only version 1
/// has the field, so Kafka falls back to it (dropping the leader epoch), and so do we.
const OFFSET_COMMIT_VALUE_WITH_EXPIRY: i16 = 1;
/// Highest offset commit value version Kafka defines.
const OFFSET_COMMIT_VALUE_MAX: i16 = 4;
/// Value version written for a classic group's metadata.
const GROUP_METADATA_VALUE_WRITE: i16 = 3;
/// Highest classic group metadata value version Kafka defines.
const GROUP_METADATA_VALUE_MAX: i16 = 4;
/// First flexible (compact-encoded, tagged-field) version of the two classic value schemas.
const CLASSIC_FIRST_FLEXIBLE: i16 = 4;
/// The only value version of the KIP-848 records (all flexible).
const CONSUMER_VALUE_VERSION: i16 = 0;

/// Member states stored in [`ConsumerAssignmentValue::state`], with Kafka's numbering.
///
/// They are plain constants rather than an enum because the field must round-trip whatever a
/// Kafka broker wrote, including states a later Kafka may add.
pub mod member_state {
    /// The member owns exactly its target assignment.
    pub const STABLE: i8 = 0;
    /// The member must first revoke partitions it owns but no longer has in its target.
    pub const UNREVOKED_PARTITIONS: i8 = 1;
    /// The member waits for partitions that other members have not released yet.
    pub const UNRELEASED_PARTITIONS: i8 = 2;
}

/// Why a `__consumer_offsets` record could not be encoded or decoded.
///
/// Replay stops on a decoding error rather than guessing, since a half-understood record would
/// silently corrupt group state; encoding errors reject the request that asked for the write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The bytes do not hold what the schema says.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The key version names no record type Kafka defines. Kafka's own loader logs such
    /// records and skips them (they may be left by an aborted upgrade); the caller may do the
    /// same by matching this variant.
    #[error("unknown record key version {0}")]
    UnknownKeyVersion(i16),
    /// The value version is not one the record type defines.
    #[error("unknown value version {value_version} for record key version {key_version}")]
    UnknownValueVersion {
        /// The record's key version.
        key_version: i16,
        /// The value version found.
        value_version: i16,
    },
    /// A field is too long for its wire encoding (strings are limited to 32767 bytes).
    #[error("{field} is {length} bytes, more than the {max} its encoding allows")]
    TooLong {
        /// The field being written.
        field: &'static str,
        /// Its length in bytes (or elements).
        length: usize,
        /// The largest length the encoding allows.
        max: usize,
    },
}

/// The value of an offset commit record: where a group's consumers resume in one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitValue {
    /// The committed offset: the next record the group will consume.
    pub offset: i64,
    /// The leader epoch of the last consumed record, or -1 if the client did not say; fetchers
    /// use it to detect log truncation after a leader change.
    pub leader_epoch: i32,
    /// Free-form client metadata stored with the offset.
    pub metadata: String,
    /// When the commit was made, in milliseconds since the epoch (drives offset expiry).
    pub commit_timestamp: i64,
    /// Explicit expiry asked by an OffsetCommit v1 client, or -1 for none. Only value version 1
    /// can store it, so a value with one is written at version 1, losing its leader epoch.
    pub expire_timestamp: i64,
}

/// The value of a classic group's metadata record: its generation and members, written after
/// every rebalance so the group survives a coordinator move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataValue {
    /// The protocol type the members agreed on (`consumer`, `connect`…); empty for a group
    /// that only commits offsets.
    pub protocol_type: String,
    /// The generation id.
    pub generation: i32,
    /// The chosen protocol (assignor) name, null while the group is empty.
    pub protocol: Option<String>,
    /// The leader's member id, null while the group is empty.
    pub leader: Option<String>,
    /// When the group last changed state, in milliseconds since the epoch, or -1 if unknown
    /// (value versions 0 and 1 lack the field).
    pub current_state_timestamp: i64,
    /// The members of this generation.
    pub members: Vec<MemberMetadata>,
}

/// One member of a classic group, as stored in [`GroupMetadataValue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadata {
    /// The member id the coordinator gave the member.
    pub member_id: String,
    /// The static membership id (`group.instance.id`), if any.
    pub group_instance_id: Option<String>,
    /// The client id of the member's connection.
    pub client_id: String,
    /// The member's host, as the coordinator saw it.
    pub client_host: String,
    /// How long the member may take to rejoin during a rebalance, in ms (-1 if unknown: value
    /// version 0 lacks it).
    pub rebalance_timeout: i32,
    /// How long the member may go without a heartbeat, in ms.
    pub session_timeout: i32,
    /// The member's metadata for the chosen protocol (opaque to the coordinator).
    pub subscription: Bytes,
    /// The assignment the leader gave this member (opaque to the coordinator).
    pub assignment: Bytes,
}

/// The value of a KIP-848 consumer group member's metadata record (value version 0): what the
/// member told the coordinator in its last ConsumerGroupHeartbeat that changed anything.
///
/// Kafka's tagged `ClassicMemberMetadata` field (set for classic-protocol members of a consumer
/// group) is skipped when decoding and never written: Gregor does not mix protocols in a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerMemberValue {
    /// The static membership id, if any.
    pub instance_id: Option<String>,
    /// The member's rack, if any.
    pub rack_id: Option<String>,
    /// The client id of the member's connection.
    pub client_id: String,
    /// The member's host, as the coordinator saw it.
    pub client_host: String,
    /// The topic names the member subscribes to.
    pub subscribed_topic_names: Vec<String>,
    /// The topic regular expression the member subscribes to, if any.
    pub subscribed_topic_regex: Option<String>,
    /// How long the member may take to revoke partitions, in ms.
    pub rebalance_timeout_ms: i32,
    /// The server-side assignor the member asked for, if any.
    pub server_assignor: Option<String>,
}

/// The value of a KIP-848 consumer group member's current assignment record (value version 0):
/// the member's epoch and what it owns, so reconciliation resumes where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerAssignmentValue {
    /// The epoch the member must heartbeat with.
    pub member_epoch: i32,
    /// The epoch before the last bump, accepted in case the member missed that bump.
    pub previous_member_epoch: i32,
    /// The reconciliation state, one of [`member_state`].
    pub state: i8,
    /// The partitions assigned to (owned by) the member, per topic id.
    pub assigned_partitions: Vec<(Uuid, Vec<i32>)>,
    /// The partitions the member must revoke before others may take them, per topic id.
    pub partitions_pending_revocation: Vec<(Uuid, Vec<i32>)>,
}

/// One record of `__consumer_offsets` that Gregor keeps, with its key decoded.
///
/// A `None` value is a tombstone: the thing the key names is deleted (an offset expired or was
/// deleted, a group or member removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoordinatorRecord {
    /// A committed offset (key version 1 when written; 0 and 1 read).
    OffsetCommit {
        /// The group id.
        group: String,
        /// The topic name.
        topic: String,
        /// The partition index.
        partition: i32,
        /// The commit, or `None` for a tombstone.
        value: Option<OffsetCommitValue>,
    },
    /// A classic group's metadata (key version 2).
    GroupMetadata {
        /// The group id.
        group: String,
        /// The metadata, or `None` for a tombstone (group deleted).
        value: Option<GroupMetadataValue>,
    },
    /// A consumer group's epoch (key version 3, value version 0).
    ConsumerGroupMetadata {
        /// The group id.
        group: String,
        /// The group epoch, or `None` for a tombstone (group deleted).
        epoch: Option<i32>,
    },
    /// A consumer group member's metadata (key version 5, value version 0).
    ConsumerGroupMember {
        /// The group id.
        group: String,
        /// The member id.
        member_id: String,
        /// The metadata, or `None` for a tombstone (member left).
        value: Option<ConsumerMemberValue>,
    },
    /// A consumer group member's current assignment (key version 8, value version 0).
    ConsumerGroupAssignment {
        /// The group id.
        group: String,
        /// The member id.
        member_id: String,
        /// The assignment, or `None` for a tombstone (member left).
        value: Option<ConsumerAssignmentValue>,
    },
}

impl CoordinatorRecord {
    /// The group the record belongs to, so replay can route it without matching every variant.
    pub fn group(&self) -> &str {
        match self {
            Self::OffsetCommit { group, .. }
            | Self::GroupMetadata { group, .. }
            | Self::ConsumerGroupMetadata { group, .. }
            | Self::ConsumerGroupMember { group, .. }
            | Self::ConsumerGroupAssignment { group, .. } => group,
        }
    }

    /// Encodes the record as Kafka would: `(key bytes, value bytes or None for a tombstone)`.
    ///
    /// Fails only when a string is longer than Kafka's encoding allows (32767 bytes), which
    /// Kafka also refuses to write; the caller should reject the request that carried it.
    pub fn encode(&self) -> Result<(Bytes, Option<Bytes>), RecordError> {
        let mut key = BytesMut::new();
        let value = match self {
            Self::OffsetCommit {
                group,
                topic,
                partition,
                value,
            } => {
                key.put_i16(OFFSET_COMMIT_KEY_V1);
                put_string(&mut key, group, "group")?;
                put_string(&mut key, topic, "topic")?;
                key.put_i32(*partition);
                value
                    .as_ref()
                    .map(|v| {
                        let version = if v.expire_timestamp != -1 {
                            OFFSET_COMMIT_VALUE_WITH_EXPIRY
                        } else {
                            OFFSET_COMMIT_VALUE_WRITE
                        };
                        encode_value(version, |buf| v.write(buf, version))
                    })
                    .transpose()?
            }
            Self::GroupMetadata { group, value } => {
                key.put_i16(GROUP_METADATA_KEY);
                put_string(&mut key, group, "group")?;
                value
                    .as_ref()
                    .map(|v| {
                        encode_value(GROUP_METADATA_VALUE_WRITE, |buf| {
                            v.write(buf, GROUP_METADATA_VALUE_WRITE)
                        })
                    })
                    .transpose()?
            }
            Self::ConsumerGroupMetadata { group, epoch } => {
                key.put_i16(CONSUMER_GROUP_METADATA_KEY);
                put_string(&mut key, group, "group id")?;
                epoch
                    .map(|epoch| {
                        encode_value(CONSUMER_VALUE_VERSION, |buf| {
                            buf.put_i32(epoch);
                            put_uvarint(buf, 0);
                            Ok(())
                        })
                    })
                    .transpose()?
            }
            Self::ConsumerGroupMember {
                group,
                member_id,
                value,
            } => {
                key.put_i16(CONSUMER_GROUP_MEMBER_KEY);
                put_string(&mut key, group, "group id")?;
                put_string(&mut key, member_id, "member id")?;
                value
                    .as_ref()
                    .map(|v| encode_value(CONSUMER_VALUE_VERSION, |buf| v.write(buf)))
                    .transpose()?
            }
            Self::ConsumerGroupAssignment {
                group,
                member_id,
                value,
            } => {
                key.put_i16(CONSUMER_GROUP_ASSIGNMENT_KEY);
                put_string(&mut key, group, "group id")?;
                put_string(&mut key, member_id, "member id")?;
                value
                    .as_ref()
                    .map(|v| encode_value(CONSUMER_VALUE_VERSION, |buf| v.write(buf)))
                    .transpose()?
            }
        };
        Ok((key.freeze(), value))
    }

    /// Decodes a record read back from `__consumer_offsets` (`value` is `None` for a
    /// tombstone).
    ///
    /// Returns `Ok(None)` for the record types Kafka defines that Gregor does not keep
    /// (partition metadata, target assignments, share and streams groups), so replay skips
    /// them; errors for malformed bytes and for versions Kafka does not define.
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Option<Self>, RecordError> {
        let mut k = Reader::new(key);
        let key_version = k.i16("key version")?;
        let record = match key_version {
            OFFSET_COMMIT_KEY_V0 | OFFSET_COMMIT_KEY_V1 => {
                let group = k.string("group")?;
                let topic = k.string("topic")?;
                let partition = k.i32("partition")?;
                k.finish("offset commit key")?;
                let value = decode_value(
                    value,
                    key_version,
                    OFFSET_COMMIT_VALUE_MAX,
                    "offset commit value",
                    OffsetCommitValue::read,
                )?;
                Self::OffsetCommit {
                    group,
                    topic,
                    partition,
                    value,
                }
            }
            GROUP_METADATA_KEY => {
                let group = k.string("group")?;
                k.finish("group metadata key")?;
                let value = decode_value(
                    value,
                    key_version,
                    GROUP_METADATA_VALUE_MAX,
                    "group metadata value",
                    GroupMetadataValue::read,
                )?;
                Self::GroupMetadata { group, value }
            }
            CONSUMER_GROUP_METADATA_KEY => {
                let group = k.string("group id")?;
                k.finish("consumer group metadata key")?;
                let epoch = decode_value(
                    value,
                    key_version,
                    CONSUMER_VALUE_VERSION,
                    "consumer group metadata value",
                    |r, _| {
                        let epoch = r.i32("epoch")?;
                        r.skip_tagged_fields()?;
                        Ok(epoch)
                    },
                )?;
                Self::ConsumerGroupMetadata { group, epoch }
            }
            CONSUMER_GROUP_MEMBER_KEY => {
                let group = k.string("group id")?;
                let member_id = k.string("member id")?;
                k.finish("consumer group member metadata key")?;
                let value = decode_value(
                    value,
                    key_version,
                    CONSUMER_VALUE_VERSION,
                    "consumer group member metadata value",
                    |r, _| ConsumerMemberValue::read(r),
                )?;
                Self::ConsumerGroupMember {
                    group,
                    member_id,
                    value,
                }
            }
            CONSUMER_GROUP_ASSIGNMENT_KEY => {
                let group = k.string("group id")?;
                let member_id = k.string("member id")?;
                k.finish("consumer group current assignment key")?;
                let value = decode_value(
                    value,
                    key_version,
                    CONSUMER_VALUE_VERSION,
                    "consumer group current assignment value",
                    |r, _| ConsumerAssignmentValue::read(r),
                )?;
                Self::ConsumerGroupAssignment {
                    group,
                    member_id,
                    value,
                }
            }
            4 | 6 | 7 | 9..=HIGHEST_SKIPPED_KEY => return Ok(None),
            other => return Err(RecordError::UnknownKeyVersion(other)),
        };
        Ok(Some(record))
    }
}

impl OffsetCommitValue {
    /// Writes the struct (without the version prefix) at `version` (0–4).
    fn write(&self, buf: &mut BytesMut, version: i16) -> Result<(), RecordError> {
        let flexible = version >= CLASSIC_FIRST_FLEXIBLE;
        buf.put_i64(self.offset);
        if version >= 3 {
            buf.put_i32(self.leader_epoch);
        }
        put_str(buf, &self.metadata, flexible, "metadata")?;
        buf.put_i64(self.commit_timestamp);
        if version == 1 {
            buf.put_i64(self.expire_timestamp);
        }
        if flexible {
            put_uvarint(buf, 0);
        }
        Ok(())
    }

    /// Reads the struct at `version` (0–4), filling absent fields with Kafka's defaults.
    fn read(r: &mut Reader<'_>, version: i16) -> Result<Self, RecordError> {
        let flexible = version >= CLASSIC_FIRST_FLEXIBLE;
        let offset = r.i64("offset")?;
        let leader_epoch = if version >= 3 {
            r.i32("leader epoch")?
        } else {
            -1
        };
        let metadata = r.str(flexible, "metadata")?;
        let commit_timestamp = r.i64("commit timestamp")?;
        let expire_timestamp = if version == 1 {
            r.i64("expire timestamp")?
        } else {
            -1
        };
        if flexible {
            r.skip_tagged_fields()?;
        }
        Ok(Self {
            offset,
            leader_epoch,
            metadata,
            commit_timestamp,
            expire_timestamp,
        })
    }
}

impl GroupMetadataValue {
    /// Writes the struct (without the version prefix) at `version` (0–4).
    fn write(&self, buf: &mut BytesMut, version: i16) -> Result<(), RecordError> {
        let flexible = version >= CLASSIC_FIRST_FLEXIBLE;
        put_str(buf, &self.protocol_type, flexible, "protocol type")?;
        buf.put_i32(self.generation);
        put_nullable_str(buf, self.protocol.as_deref(), flexible, "protocol")?;
        put_nullable_str(buf, self.leader.as_deref(), flexible, "leader")?;
        if version >= 2 {
            buf.put_i64(self.current_state_timestamp);
        }
        put_array_len(buf, self.members.len(), flexible, "members")?;
        for member in &self.members {
            member.write(buf, version)?;
        }
        if flexible {
            put_uvarint(buf, 0);
        }
        Ok(())
    }

    /// Reads the struct at `version` (0–4), filling absent fields with Kafka's defaults.
    fn read(r: &mut Reader<'_>, version: i16) -> Result<Self, RecordError> {
        let flexible = version >= CLASSIC_FIRST_FLEXIBLE;
        let protocol_type = r.str(flexible, "protocol type")?;
        let generation = r.i32("generation")?;
        let protocol = r.nullable_str(flexible, "protocol")?;
        let leader = r.nullable_str(flexible, "leader")?;
        let current_state_timestamp = if version >= 2 {
            r.i64("current state timestamp")?
        } else {
            -1
        };
        // A member is at least its four strings, two int32 and two byte arrays, all empty.
        let min_member = if flexible {
            4 + 4 + 2 + 1
        } else {
            2 * 3 + 4 + 4 * 2
        };
        let count = r.array_len(flexible, min_member, "members")?;
        let mut members = Vec::with_capacity(count);
        for _ in 0..count {
            members.push(MemberMetadata::read(r, version)?);
        }
        if flexible {
            r.skip_tagged_fields()?;
        }
        Ok(Self {
            protocol_type,
            generation,
            protocol,
            leader,
            current_state_timestamp,
            members,
        })
    }
}

impl MemberMetadata {
    /// Writes one member at the enclosing value's `version` (0–4).
    fn write(&self, buf: &mut BytesMut, version: i16) -> Result<(), RecordError> {
        let flexible = version >= CLASSIC_FIRST_FLEXIBLE;
        put_str(buf, &self.member_id, flexible, "member id")?;
        if version >= 3 {
            put_nullable_str(
                buf,
                self.group_instance_id.as_deref(),
                flexible,
                "group instance id",
            )?;
        }
        put_str(buf, &self.client_id, flexible, "client id")?;
        put_str(buf, &self.client_host, flexible, "client host")?;
        if version >= 1 {
            buf.put_i32(self.rebalance_timeout);
        }
        buf.put_i32(self.session_timeout);
        put_bytes(buf, &self.subscription, flexible, "subscription")?;
        put_bytes(buf, &self.assignment, flexible, "assignment")?;
        if flexible {
            put_uvarint(buf, 0);
        }
        Ok(())
    }

    /// Reads one member at the enclosing value's `version` (0–4).
    fn read(r: &mut Reader<'_>, version: i16) -> Result<Self, RecordError> {
        let flexible = version >= CLASSIC_FIRST_FLEXIBLE;
        let member_id = r.str(flexible, "member id")?;
        let group_instance_id = if version >= 3 {
            r.nullable_str(flexible, "group instance id")?
        } else {
            None
        };
        let client_id = r.str(flexible, "client id")?;
        let client_host = r.str(flexible, "client host")?;
        let rebalance_timeout = if version >= 1 {
            r.i32("rebalance timeout")?
        } else {
            -1
        };
        let session_timeout = r.i32("session timeout")?;
        let subscription = r.bytes(flexible, "subscription")?;
        let assignment = r.bytes(flexible, "assignment")?;
        if flexible {
            r.skip_tagged_fields()?;
        }
        Ok(Self {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout,
            session_timeout,
            subscription,
            assignment,
        })
    }
}

impl ConsumerMemberValue {
    /// Writes value version 0 (flexible), without the version prefix.
    fn write(&self, buf: &mut BytesMut) -> Result<(), RecordError> {
        put_nullable_str(buf, self.instance_id.as_deref(), true, "instance id")?;
        put_nullable_str(buf, self.rack_id.as_deref(), true, "rack id")?;
        put_str(buf, &self.client_id, true, "client id")?;
        put_str(buf, &self.client_host, true, "client host")?;
        put_array_len(
            buf,
            self.subscribed_topic_names.len(),
            true,
            "subscribed topic names",
        )?;
        for name in &self.subscribed_topic_names {
            put_str(buf, name, true, "subscribed topic name")?;
        }
        put_nullable_str(
            buf,
            self.subscribed_topic_regex.as_deref(),
            true,
            "subscribed topic regex",
        )?;
        buf.put_i32(self.rebalance_timeout_ms);
        put_nullable_str(
            buf,
            self.server_assignor.as_deref(),
            true,
            "server assignor",
        )?;
        put_uvarint(buf, 0);
        Ok(())
    }

    /// Reads value version 0, skipping tagged fields (the classic member metadata among them).
    fn read(r: &mut Reader<'_>) -> Result<Self, RecordError> {
        let instance_id = r.nullable_str(true, "instance id")?;
        let rack_id = r.nullable_str(true, "rack id")?;
        let client_id = r.str(true, "client id")?;
        let client_host = r.str(true, "client host")?;
        let count = r.array_len(true, 1, "subscribed topic names")?;
        let mut subscribed_topic_names = Vec::with_capacity(count);
        for _ in 0..count {
            subscribed_topic_names.push(r.str(true, "subscribed topic name")?);
        }
        let subscribed_topic_regex = r.nullable_str(true, "subscribed topic regex")?;
        let rebalance_timeout_ms = r.i32("rebalance timeout")?;
        let server_assignor = r.nullable_str(true, "server assignor")?;
        r.skip_tagged_fields()?;
        Ok(Self {
            instance_id,
            rack_id,
            client_id,
            client_host,
            subscribed_topic_names,
            subscribed_topic_regex,
            rebalance_timeout_ms,
            server_assignor,
        })
    }
}

impl ConsumerAssignmentValue {
    /// Writes value version 0 (flexible), without the version prefix.
    fn write(&self, buf: &mut BytesMut) -> Result<(), RecordError> {
        buf.put_i32(self.member_epoch);
        buf.put_i32(self.previous_member_epoch);
        buf.put_i8(self.state);
        put_topic_partitions(buf, &self.assigned_partitions, "assigned partitions")?;
        put_topic_partitions(
            buf,
            &self.partitions_pending_revocation,
            "partitions pending revocation",
        )?;
        put_uvarint(buf, 0);
        Ok(())
    }

    /// Reads value version 0, skipping tagged fields.
    fn read(r: &mut Reader<'_>) -> Result<Self, RecordError> {
        let member_epoch = r.i32("member epoch")?;
        let previous_member_epoch = r.i32("previous member epoch")?;
        let state = r.i8("state")?;
        let assigned_partitions = read_topic_partitions(r, "assigned partitions")?;
        let partitions_pending_revocation =
            read_topic_partitions(r, "partitions pending revocation")?;
        r.skip_tagged_fields()?;
        Ok(Self {
            member_epoch,
            previous_member_epoch,
            state,
            assigned_partitions,
            partitions_pending_revocation,
        })
    }
}

/// Writes a compact array of `TopicPartitions` structs (topic id, partitions, tagged fields).
fn put_topic_partitions(
    buf: &mut BytesMut,
    topics: &[(Uuid, Vec<i32>)],
    field: &'static str,
) -> Result<(), RecordError> {
    put_array_len(buf, topics.len(), true, field)?;
    for (topic_id, partitions) in topics {
        buf.put_slice(topic_id.as_bytes());
        put_array_len(buf, partitions.len(), true, field)?;
        for &partition in partitions {
            buf.put_i32(partition);
        }
        put_uvarint(buf, 0);
    }
    Ok(())
}

/// Reads a compact array of `TopicPartitions` structs.
fn read_topic_partitions(
    r: &mut Reader<'_>,
    field: &'static str,
) -> Result<Vec<(Uuid, Vec<i32>)>, RecordError> {
    // A topic entry is at least a 16-byte id, an empty array and an empty tag section.
    let count = r.array_len(true, 16 + 1 + 1, field)?;
    let mut topics = Vec::with_capacity(count);
    for _ in 0..count {
        let topic_id = r.uuid(field)?;
        let n = r.array_len(true, 4, field)?;
        let mut partitions = Vec::with_capacity(n);
        for _ in 0..n {
            partitions.push(r.i32(field)?);
        }
        r.skip_tagged_fields()?;
        topics.push((topic_id, partitions));
    }
    Ok(topics)
}

/// Builds a value: its `int16` version, then whatever `write` puts.
fn encode_value(
    version: i16,
    write: impl FnOnce(&mut BytesMut) -> Result<(), RecordError>,
) -> Result<Bytes, RecordError> {
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    write(&mut buf)?;
    Ok(buf.freeze())
}

/// Decodes a value (or a tombstone) whose versions run from 0 to `max_version`.
fn decode_value<T>(
    value: Option<&[u8]>,
    key_version: i16,
    max_version: i16,
    what: &'static str,
    read: impl FnOnce(&mut Reader<'_>, i16) -> Result<T, RecordError>,
) -> Result<Option<T>, RecordError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let mut r = Reader::new(value);
    let value_version = r.i16("value version")?;
    if !(0..=max_version).contains(&value_version) {
        return Err(RecordError::UnknownValueVersion {
            key_version,
            value_version,
        });
    }
    let decoded = read(&mut r, value_version)?;
    r.finish(what)?;
    Ok(Some(decoded))
}

/// Writes an unsigned varint (7 bits a byte, low bits first), as Kafka's flexible versions use.
fn put_uvarint(buf: &mut BytesMut, mut value: u32) {
    while value >= 0x80 {
        buf.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

/// Checks a string's length against Kafka's limit.
fn check_string_len(s: &str, field: &'static str) -> Result<(), RecordError> {
    if s.len() > MAX_STRING_LEN {
        return Err(RecordError::TooLong {
            field,
            length: s.len(),
            max: MAX_STRING_LEN,
        });
    }
    Ok(())
}

/// Writes a non-flexible, non-nullable string: `int16` length, then UTF-8 bytes.
fn put_string(buf: &mut BytesMut, s: &str, field: &'static str) -> Result<(), RecordError> {
    put_str(buf, s, false, field)
}

/// Writes a non-nullable string, compact (`uvarint` length + 1) when `flexible`.
fn put_str(
    buf: &mut BytesMut,
    s: &str,
    flexible: bool,
    field: &'static str,
) -> Result<(), RecordError> {
    put_nullable_str(buf, Some(s), flexible, field)
}

/// Writes a nullable string: null is length -1, or 0 in the compact form.
fn put_nullable_str(
    buf: &mut BytesMut,
    s: Option<&str>,
    flexible: bool,
    field: &'static str,
) -> Result<(), RecordError> {
    match s {
        None if flexible => put_uvarint(buf, 0),
        None => buf.put_i16(-1),
        Some(s) => {
            check_string_len(s, field)?;
            // The length fits in 15 bits, checked just above.
            let len = s.len() as u32;
            if flexible {
                put_uvarint(buf, len + 1);
            } else {
                buf.put_i16(len as i16);
            }
            buf.put_slice(s.as_bytes());
        }
    }
    Ok(())
}

/// Writes a non-nullable byte array: `int32` length, or `uvarint` length + 1 when `flexible`.
fn put_bytes(
    buf: &mut BytesMut,
    data: &[u8],
    flexible: bool,
    field: &'static str,
) -> Result<(), RecordError> {
    put_array_len(buf, data.len(), flexible, field)?;
    buf.put_slice(data);
    Ok(())
}

/// Writes an array's element count (or a byte array's length): `int32`, or `uvarint` count + 1
/// when `flexible`.
fn put_array_len(
    buf: &mut BytesMut,
    len: usize,
    flexible: bool,
    field: &'static str,
) -> Result<(), RecordError> {
    let too_long = || RecordError::TooLong {
        field,
        length: len,
        max: i32::MAX as usize - 1,
    };
    let len = i32::try_from(len)
        .ok()
        .filter(|&len| len < i32::MAX)
        .ok_or_else(too_long)?;
    if flexible {
        // Non-negative and below i32::MAX, so len + 1 fits in u32.
        put_uvarint(buf, len as u32 + 1);
    } else {
        buf.put_i32(len);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uuid(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    /// Encodes then decodes, checking the result is the record itself.
    fn round_trip(record: &CoordinatorRecord) {
        let (key, value) = record.encode().expect("encodes");
        let decoded = CoordinatorRecord::decode(&key, value.as_deref())
            .expect("decodes")
            .expect("kept record type");
        assert_eq!(&decoded, record);
    }

    fn offset_value() -> OffsetCommitValue {
        OffsetCommitValue {
            offset: 42,
            leader_epoch: 7,
            metadata: "meta".into(),
            commit_timestamp: 1_700_000_000_000,
            expire_timestamp: -1,
        }
    }

    fn member(n: u8) -> MemberMetadata {
        MemberMetadata {
            member_id: format!("m-{n}"),
            group_instance_id: Some(format!("i-{n}")),
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            rebalance_timeout: 300_000,
            session_timeout: 45_000,
            subscription: Bytes::from_static(b"\x00\x01sub"),
            assignment: Bytes::from_static(b"asg"),
        }
    }

    fn group_value() -> GroupMetadataValue {
        GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 3,
            protocol: Some("range".into()),
            leader: Some("m-1".into()),
            current_state_timestamp: 1_700_000_000_123,
            members: vec![member(1), member(2)],
        }
    }

    fn consumer_member_value() -> ConsumerMemberValue {
        ConsumerMemberValue {
            instance_id: None,
            rack_id: Some("rack-a".into()),
            client_id: "c".into(),
            client_host: "/10.0.0.1".into(),
            subscribed_topic_names: vec!["a".into(), "b".into()],
            subscribed_topic_regex: Some("t.*".into()),
            rebalance_timeout_ms: 30_000,
            server_assignor: Some("uniform".into()),
        }
    }

    fn assignment_value() -> ConsumerAssignmentValue {
        ConsumerAssignmentValue {
            member_epoch: 5,
            previous_member_epoch: 4,
            state: member_state::UNREVOKED_PARTITIONS,
            assigned_partitions: vec![(uuid(1), vec![0, 2]), (uuid(2), vec![])],
            partitions_pending_revocation: vec![(uuid(3), vec![1])],
        }
    }

    fn all_records() -> Vec<CoordinatorRecord> {
        vec![
            CoordinatorRecord::OffsetCommit {
                group: "g".into(),
                topic: "t".into(),
                partition: 3,
                value: Some(offset_value()),
            },
            CoordinatorRecord::OffsetCommit {
                group: "g".into(),
                topic: "t".into(),
                partition: 3,
                value: None,
            },
            CoordinatorRecord::GroupMetadata {
                group: "g".into(),
                value: Some(group_value()),
            },
            CoordinatorRecord::GroupMetadata {
                group: "g".into(),
                value: None,
            },
            CoordinatorRecord::ConsumerGroupMetadata {
                group: "g".into(),
                epoch: Some(12),
            },
            CoordinatorRecord::ConsumerGroupMetadata {
                group: "g".into(),
                epoch: None,
            },
            CoordinatorRecord::ConsumerGroupMember {
                group: "g".into(),
                member_id: "m".into(),
                value: Some(consumer_member_value()),
            },
            CoordinatorRecord::ConsumerGroupMember {
                group: "g".into(),
                member_id: "m".into(),
                value: None,
            },
            CoordinatorRecord::ConsumerGroupAssignment {
                group: "g".into(),
                member_id: "m".into(),
                value: Some(assignment_value()),
            },
            CoordinatorRecord::ConsumerGroupAssignment {
                group: "g".into(),
                member_id: "m".into(),
                value: None,
            },
        ]
    }

    #[test]
    fn every_variant_round_trips() {
        for record in all_records() {
            round_trip(&record);
            assert_eq!(record.group(), "g");
        }
    }

    #[test]
    fn tombstones_have_no_value_bytes() {
        for record in all_records() {
            let (_, value) = record.encode().unwrap();
            let is_tombstone = matches!(
                record,
                CoordinatorRecord::OffsetCommit { value: None, .. }
                    | CoordinatorRecord::GroupMetadata { value: None, .. }
                    | CoordinatorRecord::ConsumerGroupMetadata { epoch: None, .. }
                    | CoordinatorRecord::ConsumerGroupMember { value: None, .. }
                    | CoordinatorRecord::ConsumerGroupAssignment { value: None, .. }
            );
            assert_eq!(value.is_none(), is_tombstone);
        }
    }

    #[test]
    fn null_and_empty_fields_round_trip() {
        round_trip(&CoordinatorRecord::GroupMetadata {
            group: String::new(),
            value: Some(GroupMetadataValue {
                protocol_type: String::new(),
                generation: 0,
                protocol: None,
                leader: None,
                current_state_timestamp: -1,
                members: vec![],
            }),
        });
        round_trip(&CoordinatorRecord::ConsumerGroupMember {
            group: "g".into(),
            member_id: "m".into(),
            value: Some(ConsumerMemberValue {
                instance_id: Some("i".into()),
                rack_id: None,
                client_id: String::new(),
                client_host: String::new(),
                subscribed_topic_names: vec![],
                subscribed_topic_regex: None,
                rebalance_timeout_ms: -1,
                server_assignor: None,
            }),
        });
        let mut long = group_value();
        long.members[0].subscription = Bytes::from(vec![7; 300]);
        long.members[1].member_id = "é".repeat(100);
        round_trip(&CoordinatorRecord::GroupMetadata {
            group: "g".into(),
            value: Some(long),
        });
    }

    #[test]
    fn offset_commit_key_v1_and_value_v3_are_byte_exact() {
        let record = CoordinatorRecord::OffsetCommit {
            group: "grp".into(),
            topic: "tp".into(),
            partition: 5,
            value: Some(OffsetCommitValue {
                offset: 0x0102,
                leader_epoch: 9,
                metadata: "md".into(),
                commit_timestamp: 1000,
                expire_timestamp: -1,
            }),
        };
        let (key, value) = record.encode().unwrap();
        let mut want_key = vec![0, 1]; // key version 1
        want_key.extend([0, 3, b'g', b'r', b'p']); // group
        want_key.extend([0, 2, b't', b'p']); // topic
        want_key.extend([0, 0, 0, 5]); // partition
        assert_eq!(&key[..], &want_key[..]);
        let mut want_value = vec![0, 3]; // value version 3
        want_value.extend([0, 0, 0, 0, 0, 0, 1, 2]); // offset
        want_value.extend([0, 0, 0, 9]); // leader epoch
        want_value.extend([0, 2, b'm', b'd']); // metadata
        want_value.extend(1000i64.to_be_bytes()); // commit timestamp
        assert_eq!(value.as_deref(), Some(&want_value[..]));
    }

    #[test]
    fn offset_commit_with_expiry_is_written_at_version_1() {
        let value = OffsetCommitValue {
            offset: 1,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: 2,
            expire_timestamp: 3,
        };
        let record = CoordinatorRecord::OffsetCommit {
            group: "g".into(),
            topic: "t".into(),
            partition: 0,
            value: Some(value),
        };
        let (_, bytes) = record.encode().unwrap();
        let mut want = vec![0, 1];
        want.extend(1i64.to_be_bytes());
        want.extend([0, 0]);
        want.extend(2i64.to_be_bytes());
        want.extend(3i64.to_be_bytes());
        assert_eq!(bytes.as_deref(), Some(&want[..]));
        round_trip(&record);
    }

    #[test]
    fn group_metadata_value_v3_is_byte_exact() {
        let record = CoordinatorRecord::GroupMetadata {
            group: "g".into(),
            value: Some(GroupMetadataValue {
                protocol_type: "consumer".into(),
                generation: 2,
                protocol: Some("range".into()),
                leader: None,
                current_state_timestamp: 77,
                members: vec![MemberMetadata {
                    member_id: "m".into(),
                    group_instance_id: None,
                    client_id: "c".into(),
                    client_host: "h".into(),
                    rebalance_timeout: 10,
                    session_timeout: 20,
                    subscription: Bytes::from_static(&[1, 2]),
                    assignment: Bytes::new(),
                }],
            }),
        };
        let (key, value) = record.encode().unwrap();
        assert_eq!(&key[..], &[0, 2, 0, 1, b'g']);
        let mut want = vec![0, 3]; // value version 3
        want.extend([0, 8]);
        want.extend(b"consumer"); // protocol type
        want.extend([0, 0, 0, 2]); // generation
        want.extend([0, 5]);
        want.extend(b"range"); // protocol
        want.extend([0xff, 0xff]); // leader: null
        want.extend(77i64.to_be_bytes()); // current state timestamp
        want.extend([0, 0, 0, 1]); // one member
        want.extend([0, 1, b'm']); // member id
        want.extend([0xff, 0xff]); // group instance id: null
        want.extend([0, 1, b'c']); // client id
        want.extend([0, 1, b'h']); // client host
        want.extend([0, 0, 0, 10]); // rebalance timeout
        want.extend([0, 0, 0, 20]); // session timeout
        want.extend([0, 0, 0, 2, 1, 2]); // subscription
        want.extend([0, 0, 0, 0]); // assignment
        assert_eq!(value.as_deref(), Some(&want[..]));
    }

    #[test]
    fn consumer_records_are_byte_exact() {
        let (key, value) = CoordinatorRecord::ConsumerGroupMetadata {
            group: "g".into(),
            epoch: Some(258),
        }
        .encode()
        .unwrap();
        assert_eq!(&key[..], &[0, 3, 0, 1, b'g']);
        assert_eq!(value.as_deref(), Some(&[0, 0, 0, 0, 1, 2, 0][..]));

        let (key, value) = CoordinatorRecord::ConsumerGroupAssignment {
            group: "g".into(),
            member_id: "m".into(),
            value: Some(ConsumerAssignmentValue {
                member_epoch: 1,
                previous_member_epoch: 0,
                state: member_state::STABLE,
                assigned_partitions: vec![(uuid(0x0a), vec![3])],
                partitions_pending_revocation: vec![],
            }),
        }
        .encode()
        .unwrap();
        assert_eq!(&key[..], &[0, 8, 0, 1, b'g', 0, 1, b'm']);
        let mut want = vec![0, 0]; // value version 0
        want.extend([0, 0, 0, 1, 0, 0, 0, 0, 0]); // epochs, state
        want.push(2); // one topic (compact: n + 1)
        want.extend(uuid(0x0a).as_bytes());
        want.extend([2, 0, 0, 0, 3, 0]); // [3], no tags
        want.push(1); // no partitions pending revocation
        want.push(0); // no tags
        assert_eq!(value.as_deref(), Some(&want[..]));

        let (key, value) = CoordinatorRecord::ConsumerGroupMember {
            group: "g".into(),
            member_id: "m".into(),
            value: Some(ConsumerMemberValue {
                instance_id: None,
                rack_id: Some("r".into()),
                client_id: "c".into(),
                client_host: "h".into(),
                subscribed_topic_names: vec!["t".into()],
                subscribed_topic_regex: None,
                rebalance_timeout_ms: 5,
                server_assignor: Some("u".into()),
            }),
        }
        .encode()
        .unwrap();
        assert_eq!(&key[..], &[0, 5, 0, 1, b'g', 0, 1, b'm']);
        let want = [
            0, 0, // value version 0
            0, // instance id: null
            2, b'r', 2, b'c', 2, b'h', // rack, client id, client host
            2, 2, b't', // ["t"]
            0,    // regex: null
            0, 0, 0, 5, // rebalance timeout
            2, b'u', // server assignor
            0,    // no tags
        ];
        assert_eq!(value.as_deref(), Some(&want[..]));
    }

    /// Builds an offset commit key at version 0 for `g`/`t`/0.
    fn offset_key_v0() -> Vec<u8> {
        vec![0, 0, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 0]
    }

    fn decode_offset(value: &[u8]) -> OffsetCommitValue {
        match CoordinatorRecord::decode(&offset_key_v0(), Some(value)) {
            Ok(Some(CoordinatorRecord::OffsetCommit {
                value: Some(v),
                group,
                topic,
                partition,
            })) => {
                assert_eq!((group.as_str(), topic.as_str(), partition), ("g", "t", 0));
                v
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn decodes_every_offset_commit_value_version() {
        let mut v0 = vec![0, 0];
        v0.extend(10i64.to_be_bytes());
        v0.extend([0, 1, b'x']);
        v0.extend(20i64.to_be_bytes());
        let want = OffsetCommitValue {
            offset: 10,
            leader_epoch: -1,
            metadata: "x".into(),
            commit_timestamp: 20,
            expire_timestamp: -1,
        };
        assert_eq!(decode_offset(&v0), want);

        let mut v1 = v0.clone();
        v1[1] = 1;
        v1.extend(30i64.to_be_bytes());
        assert_eq!(
            decode_offset(&v1),
            OffsetCommitValue {
                expire_timestamp: 30,
                ..want.clone()
            }
        );

        let mut v2 = v0.clone();
        v2[1] = 2;
        assert_eq!(decode_offset(&v2), want);

        let mut v3 = vec![0, 3];
        v3.extend(10i64.to_be_bytes());
        v3.extend(4i32.to_be_bytes());
        v3.extend([0, 1, b'x']);
        v3.extend(20i64.to_be_bytes());
        let with_epoch = OffsetCommitValue {
            leader_epoch: 4,
            ..want.clone()
        };
        assert_eq!(decode_offset(&v3), with_epoch);

        let mut v4 = vec![0, 4];
        v4.extend(10i64.to_be_bytes());
        v4.extend(4i32.to_be_bytes());
        v4.extend([2, b'x']);
        v4.extend(20i64.to_be_bytes());
        // One unknown tagged field (tag 5, two bytes), which must be skipped.
        v4.extend([1, 5, 2, 0xaa, 0xbb]);
        assert_eq!(decode_offset(&v4), with_epoch);

        let mut v5 = v3.clone();
        v5[1] = 5;
        assert_eq!(
            CoordinatorRecord::decode(&offset_key_v0(), Some(&v5)),
            Err(RecordError::UnknownValueVersion {
                key_version: 0,
                value_version: 5
            })
        );
    }

    #[test]
    fn every_offset_commit_value_version_round_trips_through_the_writer() {
        for version in 0..=OFFSET_COMMIT_VALUE_MAX {
            let mut want = offset_value();
            if version < 3 {
                want.leader_epoch = -1;
            }
            if version == 1 {
                want.expire_timestamp = 99;
            }
            let bytes = encode_value(version, |buf| want.write(buf, version)).unwrap();
            assert_eq!(decode_offset(&bytes), want, "version {version}");
        }
    }

    fn decode_group(value: &[u8]) -> GroupMetadataValue {
        match CoordinatorRecord::decode(&[0, 2, 0, 1, b'g'], Some(value)) {
            Ok(Some(CoordinatorRecord::GroupMetadata { value: Some(v), .. })) => v,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn decodes_every_group_metadata_value_version() {
        // Hand-built from GroupMetadataValue.json; one member "m", protocol "p", leader "m".
        let build = |version: i16| {
            let flexible = version >= 4;
            let s = |out: &mut Vec<u8>, text: &str| {
                if flexible {
                    out.push(text.len() as u8 + 1);
                } else {
                    out.extend((text.len() as i16).to_be_bytes());
                }
                out.extend(text.as_bytes());
            };
            let mut out = version.to_be_bytes().to_vec();
            s(&mut out, "consumer");
            out.extend(6i32.to_be_bytes());
            s(&mut out, "p");
            s(&mut out, "m");
            if version >= 2 {
                out.extend(55i64.to_be_bytes());
            }
            if flexible {
                out.push(2);
            } else {
                out.extend(1i32.to_be_bytes());
            }
            s(&mut out, "m");
            if version >= 3 {
                s(&mut out, "inst");
            }
            s(&mut out, "cid");
            s(&mut out, "host");
            if version >= 1 {
                out.extend(300i32.to_be_bytes());
            }
            out.extend(100i32.to_be_bytes());
            for data in [&[1u8, 2, 3][..], &[9u8][..]] {
                if flexible {
                    out.push(data.len() as u8 + 1);
                } else {
                    out.extend((data.len() as i32).to_be_bytes());
                }
                out.extend(data);
            }
            if flexible {
                out.push(0); // member tags
                out.push(0); // value tags
            }
            out
        };
        for version in 0..=4i16 {
            let got = decode_group(&build(version));
            let want = GroupMetadataValue {
                protocol_type: "consumer".into(),
                generation: 6,
                protocol: Some("p".into()),
                leader: Some("m".into()),
                current_state_timestamp: if version >= 2 { 55 } else { -1 },
                members: vec![MemberMetadata {
                    member_id: "m".into(),
                    group_instance_id: (version >= 3).then(|| "inst".into()),
                    client_id: "cid".into(),
                    client_host: "host".into(),
                    rebalance_timeout: if version >= 1 { 300 } else { -1 },
                    session_timeout: 100,
                    subscription: Bytes::from_static(&[1, 2, 3]),
                    assignment: Bytes::from_static(&[9]),
                }],
            };
            assert_eq!(got, want, "version {version}");
            // Our writer produces the same bytes at that version.
            let written = encode_value(version, |buf| want.write(buf, version)).unwrap();
            assert_eq!(&written[..], &build(version)[..], "version {version}");
        }
    }

    #[test]
    fn skipped_and_unknown_key_versions() {
        for version in [4i16, 6, 7, 9, 10, 14, 15, HIGHEST_SKIPPED_KEY] {
            let mut key = version.to_be_bytes().to_vec();
            key.extend([0, 1, b'g']);
            assert_eq!(CoordinatorRecord::decode(&key, Some(&[0, 0, 1])), Ok(None));
            assert_eq!(CoordinatorRecord::decode(&key, None), Ok(None));
        }
        for version in [-1i16, HIGHEST_SKIPPED_KEY + 1, i16::MAX] {
            let key = version.to_be_bytes();
            assert_eq!(
                CoordinatorRecord::decode(&key, None),
                Err(RecordError::UnknownKeyVersion(version))
            );
        }
    }

    #[test]
    fn consumer_values_skip_tagged_fields() {
        // Member metadata with a tagged ClassicMemberMetadata (tag 0) that we do not keep.
        let mut value = vec![0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0];
        // instance null, rack null, client "", host "", topics [], regex null, timeout 0,
        // assignor null; then one tagged field: tag 0, size 3.
        value.extend([1, 0, 3, 1, 2, 3]);
        let got = CoordinatorRecord::decode(&[0, 5, 0, 1, b'g', 0, 1, b'm'], Some(&value));
        assert_eq!(
            got,
            Ok(Some(CoordinatorRecord::ConsumerGroupMember {
                group: "g".into(),
                member_id: "m".into(),
                value: Some(ConsumerMemberValue {
                    instance_id: None,
                    rack_id: None,
                    client_id: String::new(),
                    client_host: String::new(),
                    subscribed_topic_names: vec![],
                    subscribed_topic_regex: None,
                    rebalance_timeout_ms: 0,
                    server_assignor: None,
                }),
            }))
        );
    }

    #[test]
    fn malformed_inputs_are_errors() {
        let cases: Vec<(Vec<u8>, Option<Vec<u8>>)> = vec![
            (vec![], None),
            (vec![0], None),
            (vec![0, 1, 0, 5, b'g'], None),         // string past end
            (vec![0, 2, 0xff, 0xff], None),         // null group
            (vec![0, 2, 0xff, 0xfe], None),         // negative length
            (vec![0, 2, 0, 1, 0xff], None),         // bad UTF-8
            (vec![0, 2, 0, 1, b'g', 0], None),      // trailing key byte
            (vec![0, 2, 0, 1, b'g'], Some(vec![])), // empty value
            (vec![0, 2, 0, 1, b'g'], Some(vec![0, 3, 0])), // truncated value
            (vec![0, 2, 0, 1, b'g'], Some(vec![0xff, 0xff])), // negative value version
            (vec![0, 3, 0, 1, b'g'], Some(vec![0, 1, 0, 0, 0, 0, 0])), // value version 1
            (vec![0, 3, 0, 1, b'g'], Some(vec![0, 0, 0, 0, 0, 0, 0, 9])), // trailing
            // Tagged section whose varint never ends.
            (
                vec![0, 3, 0, 1, b'g'],
                Some(vec![0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff]),
            ),
            // Tagged field larger than the record.
            (
                vec![0, 3, 0, 1, b'g'],
                Some(vec![0, 0, 0, 0, 0, 0, 1, 0, 0x7f]),
            ),
        ];
        for (key, value) in cases {
            let got = CoordinatorRecord::decode(&key, value.as_deref());
            assert!(got.is_err(), "{key:?} {value:?} gave {got:?}");
        }
    }

    #[test]
    fn huge_counts_fail_before_allocating() {
        // Group metadata v3 claiming i32::MAX members in a few bytes.
        let mut value = vec![0, 3, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        value.extend(0i64.to_be_bytes());
        value.extend(i32::MAX.to_be_bytes());
        assert_eq!(
            CoordinatorRecord::decode(&[0, 2, 0, 1, b'g'], Some(&value)),
            Err(RecordError::Read(ReadError::Truncated { field: "members" }))
        );
        // Assignment with a compact partition count near u32::MAX.
        let mut value = vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        value.extend([0u8; 16]);
        value.extend([0xfe, 0xff, 0xff, 0xff, 0x0f]);
        let got = CoordinatorRecord::decode(&[0, 8, 0, 1, b'g', 0, 1, b'm'], Some(&value));
        assert!(
            matches!(got, Err(RecordError::Read(ReadError::Truncated { .. }))),
            "{got:?}"
        );
    }

    #[test]
    fn truncating_any_valid_record_is_an_error() {
        for record in all_records() {
            let (key, value) = record.encode().unwrap();
            for cut in 0..key.len() {
                assert!(CoordinatorRecord::decode(&key[..cut], value.as_deref()).is_err());
            }
            if let Some(value) = value {
                for cut in 0..value.len() {
                    assert!(CoordinatorRecord::decode(&key, Some(&value[..cut])).is_err());
                }
            }
        }
    }

    #[test]
    fn random_garbage_never_panics() {
        // A small xorshift generator keeps the test deterministic without extra dependencies.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let valid: Vec<_> = all_records().iter().map(|r| r.encode().unwrap()).collect();
        for i in 0..20_000 {
            let (key, value) = &valid[i % valid.len()];
            let mut key = key.to_vec();
            let mut value = value.as_ref().map(|v| v.to_vec());
            // Flip a few random bytes of the key or value; sometimes pure random bytes.
            if i % 7 == 0 {
                let len = (next() % 40) as usize;
                value = Some((0..len).map(|_| next() as u8).collect());
            }
            for _ in 0..(next() % 4) {
                let target = match value.as_mut() {
                    Some(v) if !v.is_empty() && next() % 3 != 0 => v,
                    _ => &mut key,
                };
                if !target.is_empty() {
                    let at = (next() as usize) % target.len();
                    target[at] = next() as u8;
                }
            }
            // Must not panic; whatever decodes must re-encode.
            if let Ok(Some(record)) = CoordinatorRecord::decode(&key, value.as_deref()) {
                let _ = record.encode();
            }
        }
    }

    #[test]
    fn too_long_strings_are_refused() {
        let record = CoordinatorRecord::GroupMetadata {
            group: "g".repeat(MAX_STRING_LEN + 1),
            value: None,
        };
        assert_eq!(
            record.encode(),
            Err(RecordError::TooLong {
                field: "group",
                length: MAX_STRING_LEN + 1,
                max: MAX_STRING_LEN
            })
        );
        round_trip(&CoordinatorRecord::GroupMetadata {
            group: "g".repeat(MAX_STRING_LEN),
            value: None,
        });
    }

    #[test]
    fn varints_use_several_bytes_when_needed() {
        let mut buf = BytesMut::new();
        put_uvarint(&mut buf, 300);
        assert_eq!(&buf[..], &[0xac, 0x02]);
        put_uvarint(&mut buf, u32::MAX);
        let mut r = Reader::new(&buf);
        assert_eq!(r.uvarint("a"), Ok(300));
        assert_eq!(r.uvarint("b"), Ok(u32::MAX));
        assert!(r.finish("x").is_ok());
        // A fifth byte carrying bits beyond 32 is rejected.
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x1f]);
        assert_eq!(r.uvarint("c"), Err(ReadError::InvalidVarint { field: "c" }));
    }
}

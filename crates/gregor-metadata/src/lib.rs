//! Cluster metadata, as KRaft keeps it: an ordered log of [`MetadataRecord`]s replicated by a
//! Raft quorum of controllers, applied by every node to an in-memory [`MetadataImage`].
//!
//! The split follows Kafka's: the *active controller* (the Raft leader) is the only writer; it
//! turns requests (broker registration, topic creation, ISR changes…) into records with the pure
//! [`controller::Controller`], and the quorum ([`quorum`]) makes them durable on a majority
//! before anyone acts on them. Brokers never act on a record that is not committed.

pub mod controller;
pub mod image;
pub mod quorum;
pub mod records;

pub use image::MetadataImage;
pub use quorum::{MetadataQuorum, NodeRole, QuorumConfig, QuorumError};
pub use records::MetadataRecord;

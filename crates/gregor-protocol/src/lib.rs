//! Kafka wire formats shared by Gregor's broker, storage engine and client.
//!
//! This crate owns the parts of the Kafka protocol that must be byte-exact and that the
//! `kafka-protocol` crate does not handle safely enough for a broker: the v2 record batch
//! ([`batch`]) and Kafka's numeric error codes ([`ErrorCode`]). It does no I/O, so storage and
//! network code can share it without depending on each other.

pub mod batch;
mod error_code;
pub mod ids;

pub use error_code::ErrorCode;

//! Failures that stop the broker from starting or running.

use std::net::SocketAddr;

/// Why the broker could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// A listener could not be bound (port in use, bad address).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// What the OS said (part of the message, so not also a `source`).
        source: std::io::Error,
    },
    /// The log directories could not be opened or closed cleanly.
    #[error("storage: {0}")]
    Storage(#[from] gregor_log::LogError),
    /// `meta.properties` in a log directory is unreadable or belongs to another node.
    #[error("{0}")]
    MetaProperties(String),
    /// The metadata quorum could not be joined or written.
    #[error("metadata quorum: {0}")]
    Quorum(String),
    /// The hosted topics could not be loaded from the log directories.
    #[error("cannot load topics: {0}")]
    Topics(String),
    /// Any other I/O failure of the server itself.
    #[error("I/O error on {addr:?}: {source}")]
    Io {
        /// The listener concerned, if any.
        addr: Option<SocketAddr>,
        /// What the OS said (part of the message, so not also a `source`).
        source: std::io::Error,
    },
}

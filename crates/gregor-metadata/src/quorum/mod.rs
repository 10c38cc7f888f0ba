//! The Raft quorum that replicates the metadata log (to be built on `openraft`).

//! Replica placement for new partitions (rack-unaware), and checks of manual assignments.
//!
//! The scheme is Kafka's classic round robin: partition `p`'s first replica (its preferred
//! leader) is broker `(start + p) mod n`, and its followers come after it at a distance that
//! shifts by one every `n` partitions. Leaders therefore rotate over every broker and so do
//! followers, so both spread evenly. Kafka draws `start` and the initial shift at random; here
//! they derive from a seed (the topic name's hash) so that placement is reproducible.

use std::collections::BTreeSet;

use gregor_protocol::ErrorCode;

use crate::image::MetadataImage;
use crate::records::BrokerId;

use super::ItemError;

/// FNV-1a of `name`: a stable seed for placement.
pub(super) fn seed_of(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Replicas for partitions `first_partition..first_partition + count` with `replication_factor`
/// replicas each, over `brokers` (the live ones, any order).
pub(super) fn place(
    brokers: &[BrokerId],
    first_partition: i32,
    count: i32,
    replication_factor: i16,
    seed: u64,
) -> Result<Vec<Vec<BrokerId>>, ItemError> {
    let rf = usize::try_from(replication_factor).unwrap_or(0);
    if rf < 1 {
        return Err(ItemError::new(
            ErrorCode::INVALID_REPLICATION_FACTOR,
            "Replication factor must be larger than 0, or -1 to use the default value.",
        ));
    }
    if rf > brokers.len() {
        return Err(ItemError::new(
            ErrorCode::INVALID_REPLICATION_FACTOR,
            format!(
                "Unable to replicate the partition {rf} time(s): The target replication factor \
                 of {rf} cannot be reached because only {} broker(s) are registered.",
                brokers.len()
            ),
        ));
    }
    let mut brokers = brokers.to_vec();
    brokers.sort_unstable();
    let n = brokers.len();
    let start = (seed % n as u64) as usize;
    let initial_shift = ((seed / n as u64) % n as u64) as usize;
    let mut out = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    for p in first_partition.max(0)..first_partition.max(0) + count.max(0) {
        let p = p as usize;
        let first = (start + p) % n;
        let shift = initial_shift + p / n;
        let mut replicas = Vec::with_capacity(rf);
        replicas.push(brokers[first]);
        for j in 0..rf - 1 {
            let index = (first + 1 + (shift + j) % (n - 1)) % n;
            replicas.push(brokers[index]);
        }
        out.push(replicas);
    }
    Ok(out)
}

/// Checks one manually assigned replica list: not empty, no duplicates, registered brokers,
/// at least one of them live (so the partition starts with a leader).
pub(super) fn check_assignment(
    image: &MetadataImage,
    partition: i32,
    replicas: &[BrokerId],
    live: impl Fn(BrokerId) -> bool,
) -> Result<(), ItemError> {
    let invalid = |message: String| {
        Err(ItemError::new(
            ErrorCode::INVALID_REPLICA_ASSIGNMENT,
            message,
        ))
    };
    if replicas.is_empty() {
        return invalid(format!(
            "The manual partition assignment for partition {partition} is empty."
        ));
    }
    let distinct: BTreeSet<BrokerId> = replicas.iter().copied().collect();
    if distinct.len() != replicas.len() {
        return invalid(format!(
            "The manual partition assignment for partition {partition} contains duplicate \
             replicas: {replicas:?}."
        ));
    }
    if let Some(unknown) = replicas.iter().find(|r| !image.brokers.contains_key(r)) {
        return invalid(format!(
            "The manual partition assignment includes broker {unknown}, but no such broker is \
             registered."
        ));
    }
    if !replicas.iter().any(|r| live(*r)) {
        return invalid(format!(
            "All brokers specified in the manual partition assignment for partition \
             {partition} are fenced or in controlled shutdown."
        ));
    }
    Ok(())
}

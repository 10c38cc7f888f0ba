//! [`TransactionCoordinator`] over real storage (a single-node broker core in a temporary
//! directory, with topic "t" whose leader has no listener, so markers stay pending): idempotent producer ids, fencing an ongoing transaction, transactional id
//! expiration, and what survives a restart.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gregor_protocol::ErrorCode;

use super::*;
use crate::config::BrokerConfig;

/// Far past the wall clock, so the node's own ticker (on the wall clock) never finds these
/// transactions due; the tests drive the deadlines themselves.
const T0: i64 = 4_000_000_000_000;
const EXPIRATION_MS: i64 = 60_000;

/// A broker core and its transaction coordinator, every `__transaction_state` partition led
/// (and loaded) here.
struct Node {
    runtime: tokio::runtime::Runtime,
    node: crate::node::Node,
    txn: Arc<TransactionCoordinator>,
}

impl Node {
    fn open(dir: &Path) -> Node {
        let (runtime, node) = crate::node::start_on_own_runtime(BrokerConfig {
            log_dirs: vec![dir.to_path_buf()],
            transaction: TransactionConfig {
                log_num_partitions: 3,
                transactional_id_expiration_ms: EXPIRATION_MS,
                remove_expired_interval_ms: 1,
                abort_timed_out_interval_ms: 1,
                ..TransactionConfig::default()
            },
            ..BrokerConfig::default()
        });
        let txn = Arc::clone(&node.broker.txn);
        let t = Arc::clone(&txn);
        runtime
            .block_on(runtime.spawn_blocking(move || t.find_coordinator("probe")))
            .unwrap()
            .unwrap();
        let topics = Arc::clone(&node.broker.topics);
        let create = topics.create("t", 1, 1, Default::default(), Default::default(), false);
        // Already there after a restart.
        let _ = runtime.block_on(create);
        runtime.block_on(async {
            while (0..3).any(|p| txn.state.partition_epoch(p).is_err()) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        Node { runtime, node, txn }
    }

    /// Runs `f` on a blocking thread, as the broker runs the coordinator.
    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Arc<TransactionCoordinator>) -> T + Send + 'static,
    ) -> T {
        let txn = Arc::clone(&self.txn);
        self.runtime
            .block_on(self.runtime.spawn_blocking(move || f(&txn)))
            .unwrap()
    }

    fn restart(self, dir: &Path) -> Node {
        let Node { runtime, node, txn } = self;
        drop(txn);
        runtime.block_on(node.close()).unwrap();
        drop(runtime);
        Node::open(dir)
    }
}

fn init(
    id: Option<&'static str>,
) -> impl FnOnce(&Arc<TransactionCoordinator>) -> Result<(i64, i16), ErrorCode> {
    move |t| {
        t.init_producer_id(
            id,
            InitRequest {
                timeout_ms: 60_000,
                expected: None,
            },
            T0,
        )
    }
}

#[test]
fn idempotent_producers_get_distinct_ids_at_epoch_zero() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    let a = node.run(init(None)).unwrap();
    let b = node.run(init(None)).unwrap();
    assert_eq!((a.1, b.1), (0, 0));
    assert_ne!(a.0, b.0);
    assert_eq!(node.run(init(Some(""))), Err(ErrorCode::INVALID_REQUEST));
    let too_long = node.run(|t| {
        t.init_producer_id(
            Some("tx"),
            InitRequest {
                timeout_ms: 900_001,
                expected: None,
            },
            T0,
        )
    });
    assert_eq!(too_long, Err(ErrorCode::INVALID_TRANSACTION_TIMEOUT));
    node.runtime.block_on(node.node.close()).unwrap();
}

#[test]
fn a_new_producer_instance_fences_and_aborts_the_ongoing_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    let (pid, epoch) = node.run(init(Some("tx"))).unwrap();
    let partitions = BTreeSet::from([("t".to_string(), 0)]);
    node.run(move |t| t.add_partitions("tx", pid, epoch, &partitions, T0))
        .unwrap();
    assert_eq!(
        node.run(init(Some("tx"))),
        Err(ErrorCode::CONCURRENT_TRANSACTIONS)
    );
    let m = node.run(|t| t.describe("tx")).unwrap();
    assert_eq!(m.state, TransactionState::PrepareAbort);
    assert_eq!(m.producer_epoch, epoch + 1);
    // The old instance is fenced; the new one waits for the abort to complete.
    assert_eq!(
        node.run(move |t| t.end_transaction("tx", pid, epoch, TransactionResult::Commit, T0)),
        Err(ErrorCode::PRODUCER_FENCED)
    );
    assert_eq!(
        node.run(init(Some("tx"))),
        Err(ErrorCode::CONCURRENT_TRANSACTIONS)
    );
    // A restarted coordinator finds the abort still to finish (its markers are re-sent).
    let node = node.restart(dir.path());
    let m = node.run(|t| t.describe("tx")).unwrap();
    assert_eq!(
        (m.state, m.producer_id, m.producer_epoch),
        (TransactionState::PrepareAbort, pid, epoch + 1)
    );
    assert_eq!(m.partitions.len(), 1);
    // Once its only partition is gone (topic deleted), the reloaded abort completes.
    let topics = Arc::clone(&node.node.broker.topics);
    node.runtime.block_on(topics.delete("t")).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let state = loop {
        let m = node.run(|t| t.describe("tx")).unwrap();
        if m.state != TransactionState::PrepareAbort || std::time::Instant::now() > deadline {
            break m.state;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(state, TransactionState::CompleteAbort);
    // And the new producer instance gets its epoch.
    assert_eq!(node.run(init(Some("tx"))), Ok((pid, epoch + 2)));
    node.runtime.block_on(node.node.close()).unwrap();
}

#[test]
fn idle_transactional_ids_expire_and_stay_gone_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    node.run(init(Some("idle"))).unwrap();
    node.run(init(Some("busy"))).unwrap();
    let (pid, epoch) = node.run(init(Some("busy"))).unwrap();
    let partitions = BTreeSet::from([("t".to_string(), 0)]);
    node.run(move |t| t.add_partitions("busy", pid, epoch, &partitions, T0))
        .unwrap();
    // Long past the expiration: the idle id goes; the busy one is aborted for its timeout
    // instead (an id with a transaction in flight never expires).
    node.run(|t| t.tick(T0 + EXPIRATION_MS + 1));
    assert_eq!(
        node.run(|t| t.describe("idle")).unwrap_err(),
        ErrorCode::TRANSACTIONAL_ID_NOT_FOUND
    );
    let busy = node.run(|t| t.describe("busy")).unwrap();
    assert_eq!(busy.state, TransactionState::PrepareAbort);
    assert_eq!(busy.producer_epoch, epoch + 1);
    let listed = node.run(|t| t.list()).unwrap();
    assert_eq!(listed.len(), 1);
    let node = node.restart(dir.path());
    assert_eq!(
        node.run(|t| t.describe("idle")).unwrap_err(),
        ErrorCode::TRANSACTIONAL_ID_NOT_FOUND,
        "the tombstone is replayed"
    );
    // A forgotten id starts over with a new producer id.
    let (new_pid, new_epoch) = node.run(init(Some("idle"))).unwrap();
    assert_eq!(new_epoch, 0);
    assert_ne!(new_pid, pid);
    node.runtime.block_on(node.node.close()).unwrap();
}

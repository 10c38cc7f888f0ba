//! `ProducerIdManager`: hands out producer ids from blocks the controller allocates, so ids are
//! unique across the cluster without asking the controller for each one.
//!
//! The next block is fetched in the background once most of the current one is used, so an
//! InitProducerId rarely waits for the controller; a caller that finds both used up waits for
//! the fetch in flight (bounded) and is otherwise told to retry. Callable from any number of
//! blocking threads at once.

use std::sync::Arc;
use std::time::Duration;

use gregor_metadata::controller::{ControllerRequest, ControllerResponse};
use gregor_metadata::quorum::MetadataQuorum;
use gregor_protocol::ErrorCode;
use parking_lot::{Condvar, Mutex};

use crate::replica::ReplicaManager;

/// How long a caller waits for a block being fetched before it is told to retry.
const WAIT_FOR_BLOCK: Duration = Duration::from_secs(5);
/// How long a block request may take at the controller.
const CONTROLLER_TIMEOUT: Duration = Duration::from_secs(10);

/// Why no producer id could be handed out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProducerIdError {
    /// The controller did not hand out a block (unreachable, or this broker not registered).
    #[error("no producer id block from the controller: {0}")]
    Allocation(String),
    /// A block is being fetched and did not arrive in time.
    #[error("waiting for the next producer id block")]
    Waiting,
}

impl ProducerIdError {
    /// What the producer is told: retriable, so it tries again.
    pub fn error_code(&self) -> ErrorCode {
        ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
    }
}

/// Where blocks come from (the controller; a counter in tests).
pub trait ProducerIdSource: Send + Sync + 'static {
    /// A fresh block: first id and count. Blocks the calling thread.
    fn allocate(&self) -> Result<(i64, i32), ProducerIdError>;
}

/// Blocks from the active controller (`AllocateProducerIds`).
pub struct ControllerProducerIds {
    quorum: Arc<MetadataQuorum>,
    replicas: Arc<ReplicaManager>,
    broker_id: i32,
    runtime: tokio::runtime::Handle,
}

impl ControllerProducerIds {
    /// Blocks for `broker_id`, asked with its current registration epoch. Must be called
    /// within the broker's runtime.
    pub fn new(
        quorum: Arc<MetadataQuorum>,
        replicas: Arc<ReplicaManager>,
        broker_id: i32,
    ) -> ControllerProducerIds {
        ControllerProducerIds {
            quorum,
            replicas,
            broker_id,
            runtime: tokio::runtime::Handle::current(),
        }
    }
}

impl ProducerIdSource for ControllerProducerIds {
    fn allocate(&self) -> Result<(i64, i32), ProducerIdError> {
        let broker_epoch = self
            .replicas
            .image()
            .brokers
            .get(&self.broker_id)
            .map(|b| b.epoch)
            .ok_or_else(|| ProducerIdError::Allocation("this broker is not registered".into()))?;
        let request = ControllerRequest::AllocateProducerIds {
            broker_id: self.broker_id,
            broker_epoch,
        };
        match self
            .runtime
            .block_on(self.quorum.request(request, CONTROLLER_TIMEOUT))
        {
            Ok(ControllerResponse::ProducerIds(Ok(block))) => Ok(block),
            Ok(ControllerResponse::ProducerIds(Err(e))) => {
                Err(ProducerIdError::Allocation(format!("{e:?}")))
            }
            Ok(other) => Err(ProducerIdError::Allocation(format!(
                "unexpected answer {other:?}"
            ))),
            Err(e) => Err(ProducerIdError::Allocation(e.to_string())),
        }
    }
}

#[derive(Default)]
struct Blocks {
    /// Next id to hand out, the end (exclusive) and the size of the current block.
    current: Option<(i64, i64, i64)>,
    /// The block fetched ahead.
    next: Option<(i64, i64)>,
    /// A fetch is in flight.
    fetching: bool,
}

struct Shared {
    source: Box<dyn ProducerIdSource>,
    blocks: Mutex<Blocks>,
    arrived: Condvar,
}

impl Shared {
    /// Fetches one block into `next`; wakes the waiters whatever happens.
    fn fetch(&self) -> Result<(), ProducerIdError> {
        let result = self.source.allocate();
        let mut blocks = self.blocks.lock();
        blocks.fetching = false;
        let outcome = match result {
            Ok((start, len)) => {
                blocks.next = Some((start, start + i64::from(len.max(0))));
                Ok(())
            }
            Err(e) => Err(e),
        };
        self.arrived.notify_all();
        outcome
    }
}

/// Hands out producer ids; see the module docs.
#[derive(Clone)]
pub struct ProducerIdManager {
    shared: Arc<Shared>,
}

impl ProducerIdManager {
    /// A manager that takes its blocks from `source`.
    pub fn new(source: impl ProducerIdSource) -> ProducerIdManager {
        ProducerIdManager {
            shared: Arc::new(Shared {
                source: Box::new(source),
                blocks: Mutex::new(Blocks::default()),
                arrived: Condvar::new(),
            }),
        }
    }

    /// A producer id never handed out before. Blocks (on the controller, at worst): call from
    /// a blocking thread.
    pub fn generate(&self) -> Result<i64, ProducerIdError> {
        let mut blocks = self.shared.blocks.lock();
        loop {
            if let Some((next, end, size)) = blocks.current.filter(|(next, end, _)| next < end) {
                blocks.current = Some((next + 1, end, size));
                // Fetch the next block once 90% of this one is used, as Kafka does.
                if blocks.next.is_none() && !blocks.fetching && (end - next - 1) * 10 < size {
                    blocks.fetching = true;
                    let shared = Arc::clone(&self.shared);
                    std::thread::spawn(move || {
                        if let Err(e) = shared.fetch() {
                            tracing::warn!(error = %e, "prefetching producer ids failed");
                        }
                    });
                }
                return Ok(next);
            }
            if let Some((start, end)) = blocks.next.take() {
                blocks.current = Some((start, end, end - start));
                continue;
            }
            if blocks.fetching {
                if self
                    .shared
                    .arrived
                    .wait_for(&mut blocks, WAIT_FOR_BLOCK)
                    .timed_out()
                {
                    return Err(ProducerIdError::Waiting);
                }
                // Another caller may have taken the block, or the fetch failed: look again
                // (and fetch ourselves if nobody else is).
                continue;
            }
            blocks.fetching = true;
            drop(blocks);
            self.shared.fetch()?;
            blocks = self.shared.blocks.lock();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

    use super::*;

    struct Counter {
        next: AtomicI64,
        calls: Arc<AtomicUsize>,
        size: i32,
    }

    impl ProducerIdSource for Counter {
        fn allocate(&self) -> Result<(i64, i32), ProducerIdError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let start = self.next.fetch_add(i64::from(self.size), Ordering::SeqCst);
            Ok((start, self.size))
        }
    }

    struct Broken;

    impl ProducerIdSource for Broken {
        fn allocate(&self) -> Result<(i64, i32), ProducerIdError> {
            Err(ProducerIdError::Allocation("no controller".into()))
        }
    }

    fn counter(size: i32) -> (ProducerIdManager, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let source = Counter {
            next: AtomicI64::new(1000),
            calls: Arc::clone(&calls),
            size,
        };
        (ProducerIdManager::new(source), calls)
    }

    #[test]
    fn ids_are_consecutive_within_and_across_blocks() {
        let (ids, _) = counter(10);
        let got: Vec<i64> = (0..25).map(|_| ids.generate().unwrap()).collect();
        assert_eq!(got, (1000..1025).collect::<Vec<_>>());
    }

    #[test]
    fn next_block_is_prefetched_before_the_current_runs_out() {
        let (ids, calls) = counter(100);
        for _ in 0..95 {
            ids.generate().unwrap();
        }
        // The prefetch runs on its own thread: give it a moment.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while calls.load(Ordering::SeqCst) < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn concurrent_callers_never_share_an_id() {
        let (ids, _) = counter(7);
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let ids = ids.clone();
                std::thread::spawn(move || {
                    (0..50).map(|_| ids.generate().unwrap()).collect::<Vec<_>>()
                })
            })
            .collect();
        let mut seen = HashSet::new();
        for h in handles {
            for id in h.join().unwrap() {
                assert!(seen.insert(id), "id {id} handed out twice");
            }
        }
        assert_eq!(seen.len(), 400);
    }

    #[test]
    fn controller_failure_is_retriable() {
        let ids = ProducerIdManager::new(Broken);
        let e = ids.generate().unwrap_err();
        assert_eq!(e.error_code(), ErrorCode::COORDINATOR_LOAD_IN_PROGRESS);
        // And the next call tries again rather than waiting on a fetch that never ends.
        assert!(matches!(
            ids.generate(),
            Err(ProducerIdError::Allocation(_))
        ));
    }
}

//! ISR changes on their way to the controller (Kafka's `AlterPartitionManager`).
//!
//! Leaders decide that a follower fell behind or caught up; only the controller may commit
//! the change. Requests queue here and leave in batches, one `AlterPartition` per batch; the
//! answer (the ISR and partition epoch now in force, or a refusal) goes back to each
//! partition, which allows one change in flight at a time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use gregor_metadata::controller::{ControllerRequest, ControllerResponse, IsrChange};
use gregor_metadata::quorum::MetadataQuorum;
use gregor_metadata::records::BrokerId;
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use super::partition::Partition;
use crate::lifecycle::Standing;

/// How long one AlterPartition may take before its changes are dropped (to be asked again).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

type Queued = (Arc<Partition>, IsrChange);

/// The leaders' side of the queue.
#[derive(Clone)]
pub struct AlterPartitionSender(mpsc::UnboundedSender<Queued>);

/// The controller's side of the queue: drained by [`run`].
pub struct AlterPartitionQueue(mpsc::UnboundedReceiver<Queued>);

/// A new, empty queue.
pub fn channel() -> (AlterPartitionSender, AlterPartitionQueue) {
    let (tx, rx) = mpsc::unbounded_channel();
    (AlterPartitionSender(tx), AlterPartitionQueue(rx))
}

impl AlterPartitionSender {
    /// Queues `change` for `partition`. If the queue is gone (shutdown), the partition is told
    /// at once so it does not wait for an answer.
    pub fn send(&self, partition: Arc<Partition>, change: IsrChange) {
        if let Err(mpsc::error::SendError((partition, _))) = self.0.send((partition, change)) {
            partition.isr_change_done(None);
        }
    }
}

/// Sends queued changes until the queue closes. `standing` carries this broker's current
/// registration (changes wait until there is one).
pub async fn run(
    AlterPartitionQueue(mut queue): AlterPartitionQueue,
    quorum: Arc<MetadataQuorum>,
    node_id: BrokerId,
    mut standing: watch::Receiver<Standing>,
) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while let Ok(next) = queue.try_recv() {
            batch.push(next);
        }
        let epoch = match standing.wait_for(|s| s.broker_epoch.is_some()).await {
            Ok(s) => s.broker_epoch.expect("waited for Some"),
            Err(_) => return,
        };
        let mut waiting: HashMap<(Uuid, i32), Arc<Partition>> = HashMap::new();
        let changes = batch
            .into_iter()
            .map(|(partition, change)| {
                waiting.insert((change.topic_id, change.partition), partition);
                change
            })
            .collect();
        let request = ControllerRequest::AlterPartition {
            broker_id: node_id,
            broker_epoch: epoch,
            changes,
        };
        match quorum.request(request, REQUEST_TIMEOUT).await {
            Ok(ControllerResponse::PartitionsAltered(Ok(results))) => {
                for (topic_id, index, result) in results {
                    let Some(partition) = waiting.remove(&(topic_id, index)) else {
                        continue;
                    };
                    match result {
                        Ok(altered) => partition.isr_change_done(Some((
                            altered.leader_epoch,
                            altered.isr,
                            altered.partition_epoch,
                        ))),
                        Err(e) => {
                            tracing::info!(partition = %partition.topic_partition(), error = %e.message, "controller refused ISR change");
                            partition.isr_change_done(None);
                        }
                    }
                }
            }
            Ok(other) => {
                tracing::warn!(response = ?other, "controller refused AlterPartition");
            }
            Err(e) => tracing::warn!(error = %e, "AlterPartition failed"),
        }
        for partition in waiting.into_values() {
            partition.isr_change_done(None);
        }
    }
}

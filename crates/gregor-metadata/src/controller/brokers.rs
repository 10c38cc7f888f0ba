//! Broker lifecycle (Kafka's `ClusterControlManager` and `BrokerHeartbeatManager`):
//! registration, heartbeats, unfencing, controlled shutdown, session expiry, producer id blocks.

use gregor_protocol::ErrorCode;
use uuid::Uuid;

use crate::image::MetadataImage;
use crate::records::{BrokerId, Endpoint, MetadataRecord, RegisterBrokerRecord};

use super::election::Batch;
use super::{Controller, ControllerResponse, HeartbeatReply, ItemError};

/// Size of a producer id block (Kafka's `ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`).
pub(super) const PRODUCER_ID_BLOCK: i32 = 1000;

impl Controller {
    /// When `broker` was last heard of: its last heartbeat or registration, and no earlier
    /// than this controller's start.
    fn last_contact(&self, broker: BrokerId) -> i64 {
        self.last_contact
            .get(&broker)
            .copied()
            .unwrap_or(self.start_ms)
            .max(self.start_ms)
    }

    fn session_expired(&self, broker: BrokerId, now_ms: i64) -> bool {
        now_ms - self.last_contact(broker) > self.config.broker_session_timeout_ms
    }

    pub(super) fn register_broker(
        &mut self,
        batch: &mut Batch<'_>,
        broker_id: BrokerId,
        incarnation_id: Uuid,
        endpoints: Vec<Endpoint>,
        rack: Option<String>,
        now_ms: i64,
    ) -> ControllerResponse {
        // Another live process with this id keeps it. "Live" means heard from during this
        // controller's term: the full session a new controller grants every broker is a grace
        // period, not proof of life, so a broker restarted together with its controller (a
        // single node killed and started again) need not wait it out.
        if let Some(existing) = batch.image().brokers.get(&broker_id)
            && existing.incarnation_id != incarnation_id
            && !existing.fenced
            && self.last_contact.contains_key(&broker_id)
            && !self.session_expired(broker_id, now_ms)
        {
            return ControllerResponse::Registered(Err(ItemError::new(
                ErrorCode::DUPLICATE_BROKER_REGISTRATION,
                format!(
                    "Another broker is registered with broker id {broker_id} (incarnation {}).",
                    existing.incarnation_id
                ),
            )));
        }
        // The new registration starts fenced: whatever the old one led or was in-sync for must
        // be handed over first (Kafka's handling of an unclean restart).
        if batch.image().brokers.contains_key(&broker_id) {
            batch.evacuate(&self.config, broker_id);
        }
        let epoch = batch.image().next_broker_epoch;
        batch.push(MetadataRecord::RegisterBroker(RegisterBrokerRecord {
            broker_id,
            incarnation_id,
            broker_epoch: epoch,
            endpoints,
            rack,
            fenced: true,
        }));
        self.last_contact.insert(broker_id, now_ms);
        ControllerResponse::Registered(Ok(epoch))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn heartbeat(
        &mut self,
        batch: &mut Batch<'_>,
        broker_id: BrokerId,
        broker_epoch: i64,
        current_metadata_offset: u64,
        want_fence: bool,
        want_shutdown_now: bool,
        now_ms: i64,
    ) -> ControllerResponse {
        let Some(registration) = batch.image().brokers.get(&broker_id) else {
            return ControllerResponse::Heartbeat(Err(ItemError::new(
                ErrorCode::BROKER_ID_NOT_REGISTERED,
                format!("Broker {broker_id} is not registered."),
            )));
        };
        if registration.epoch != broker_epoch {
            return ControllerResponse::Heartbeat(Err(ItemError::new(
                ErrorCode::STALE_BROKER_EPOCH,
                format!(
                    "Broker {broker_id} heartbeated with epoch {broker_epoch}, but its \
                     registration has epoch {}.",
                    registration.epoch
                ),
            )));
        }
        self.last_contact.insert(broker_id, now_ms);
        let is_caught_up = current_metadata_offset >= registration.registered_offset;
        let fenced = registration.fenced;
        if want_shutdown_now {
            // Controlled shutdown: hand every leadership and ISR membership over, then fence.
            // All of it commits in this one batch, so the broker leads nothing once it is
            // applied and may go.
            if !fenced {
                batch.fence(&self.config, broker_id);
            }
            return ControllerResponse::Heartbeat(Ok(HeartbeatReply {
                is_caught_up,
                is_fenced: true,
                should_shutdown: true,
            }));
        }
        let is_fenced = if fenced && !want_fence && is_caught_up {
            batch.push(MetadataRecord::UnfenceBroker {
                broker_id,
                broker_epoch,
            });
            // Partitions left without a leader may have one again.
            batch.recover_leaderless(&self.config);
            false
        } else if !fenced && want_fence {
            batch.fence(&self.config, broker_id);
            true
        } else {
            fenced
        };
        ControllerResponse::Heartbeat(Ok(HeartbeatReply {
            is_caught_up,
            is_fenced,
            should_shutdown: false,
        }))
    }

    /// Fences every unfenced broker whose session expired.
    pub(super) fn fence_expired(&mut self, batch: &mut Batch<'_>, now_ms: i64) {
        let expired: Vec<BrokerId> = batch
            .image()
            .brokers
            .values()
            .filter(|b| !b.fenced && self.session_expired(b.id, now_ms))
            .map(|b| b.id)
            .collect();
        for broker in expired {
            batch.fence(&self.config, broker);
        }
    }

    pub(super) fn allocate_producer_ids(
        &mut self,
        batch: &mut Batch<'_>,
        broker_id: BrokerId,
        broker_epoch: i64,
    ) -> ControllerResponse {
        if let Err(e) = check_epoch(batch.image(), broker_id, broker_epoch) {
            return ControllerResponse::ProducerIds(Err(e));
        }
        let start = batch.image().next_producer_id;
        batch.push(MetadataRecord::ProducerIds {
            broker_id,
            broker_epoch,
            next_producer_id: start + i64::from(PRODUCER_ID_BLOCK),
        });
        ControllerResponse::ProducerIds(Ok((start, PRODUCER_ID_BLOCK)))
    }
}

/// `STALE_BROKER_EPOCH` unless `broker_id` is registered with `broker_epoch`.
pub(super) fn check_epoch(
    image: &MetadataImage,
    broker_id: BrokerId,
    broker_epoch: i64,
) -> Result<(), ItemError> {
    match image.brokers.get(&broker_id) {
        Some(b) if b.epoch == broker_epoch => Ok(()),
        Some(b) => Err(ItemError::new(
            ErrorCode::STALE_BROKER_EPOCH,
            format!(
                "Expected broker epoch {} for broker {broker_id}, got {broker_epoch}.",
                b.epoch
            ),
        )),
        None => Err(ItemError::new(
            ErrorCode::STALE_BROKER_EPOCH,
            format!("Broker {broker_id} is not registered."),
        )),
    }
}

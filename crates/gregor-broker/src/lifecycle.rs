//! `BrokerLifecycleManager`: registration with the controller, heartbeats, and controlled
//! shutdown, as a KRaft broker does them.
//!
//! A broker registers when it starts and is fenced (it leads nothing, clients are not told of
//! it) until its heartbeats show it has applied the metadata log past its registration. It then
//! heartbeats every `broker.heartbeat.interval.ms`; if the controller hears nothing for
//! `broker.session.timeout.ms` it fences the broker and moves its leaderships. On an orderly
//! shutdown the broker asks the controller to move its leaderships first (controlled shutdown),
//! so clients switch leaders before the process goes away rather than after a session timeout.

use std::sync::Arc;
use std::time::Duration;

use gregor_metadata::controller::{ControllerRequest, ControllerResponse};
use gregor_metadata::quorum::MetadataQuorum;
use gregor_metadata::records::{BrokerId, Endpoint};
use gregor_protocol::ErrorCode;
use tokio::sync::watch;
use uuid::Uuid;

/// How long one registration or heartbeat may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Heartbeat pace while fenced (waiting to catch up or to be unfenced).
const FENCED_RETRY: Duration = Duration::from_millis(20);
/// How long a controlled shutdown may wait for leaderships to move.
const CONTROLLED_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Who this broker is to the controller.
#[derive(Debug, Clone)]
pub struct Registration {
    /// `node.id`.
    pub broker_id: BrokerId,
    /// This process run.
    pub incarnation_id: Uuid,
    /// Advertised listeners.
    pub endpoints: Vec<Endpoint>,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// `broker.heartbeat.interval.ms`.
    pub heartbeat_interval: Duration,
}

/// The broker's standing with the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Standing {
    /// Epoch of the current registration.
    pub broker_epoch: Option<i64>,
    /// Unfenced: may lead partitions.
    pub unfenced: bool,
}

/// Registers and heartbeats until `stop` turns true, then shuts down in a controlled way.
/// `applied` is how far this broker has applied the metadata log.
pub async fn run(
    quorum: Arc<MetadataQuorum>,
    registration: Registration,
    applied: watch::Receiver<u64>,
    standing: watch::Sender<Standing>,
    mut stop: watch::Receiver<bool>,
) {
    let mut epoch: Option<i64> = None;
    let mut ticker = tokio::time::interval(registration.heartbeat_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if *stop.borrow() {
            break;
        }
        match epoch {
            None => match register(&quorum, &registration).await {
                Ok(e) => {
                    tracing::info!(broker_epoch = e, "registered with the controller");
                    epoch = Some(e);
                    standing.send_modify(|s| {
                        s.broker_epoch = Some(e);
                        s.unfenced = false;
                    });
                    // Heartbeat at once: a caught-up broker is unfenced without waiting a tick.
                    continue;
                }
                Err(e) => {
                    tracing::info!(error = %e, "registration with the controller failed; retrying")
                }
            },
            Some(e) => {
                let offset = *applied.borrow();
                match heartbeat(&quorum, &registration, e, offset, false).await {
                    Ok(reply) => {
                        let unfenced = !reply.is_fenced;
                        standing.send_if_modified(|s| {
                            let changed = s.unfenced != unfenced;
                            s.unfenced = unfenced;
                            changed
                        });
                        if !unfenced {
                            // Catching up, or asked to be unfenced: look again soon rather than
                            // a heartbeat interval later, so a starting broker serves promptly.
                            tokio::time::sleep(FENCED_RETRY).await;
                            continue;
                        }
                    }
                    Err(HeartbeatError::Stale) => {
                        tracing::warn!(
                            "controller no longer knows this registration; registering again"
                        );
                        epoch = None;
                        standing.send_replace(Standing::default());
                        continue;
                    }
                    Err(HeartbeatError::Other(e)) => {
                        tracing::debug!(error = %e, "heartbeat failed")
                    }
                }
            }
        }
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => {}
        }
    }
    if let Some(e) = epoch {
        controlled_shutdown(&quorum, &registration, e, &applied).await;
    }
}

async fn register(quorum: &MetadataQuorum, r: &Registration) -> Result<i64, String> {
    let request = ControllerRequest::RegisterBroker {
        broker_id: r.broker_id,
        incarnation_id: r.incarnation_id,
        endpoints: r.endpoints.clone(),
        rack: r.rack.clone(),
    };
    match quorum.request(request, REQUEST_TIMEOUT).await {
        Ok(ControllerResponse::Registered(Ok(epoch))) => Ok(epoch),
        Ok(ControllerResponse::Registered(Err(e))) => {
            Err(format!("{}: {}", ErrorCode(e.code).name(), e.message))
        }
        Ok(other) => Err(format!("unexpected answer {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

enum HeartbeatError {
    Stale,
    Other(String),
}

async fn heartbeat(
    quorum: &MetadataQuorum,
    r: &Registration,
    broker_epoch: i64,
    offset: u64,
    shutting_down: bool,
) -> Result<gregor_metadata::controller::HeartbeatReply, HeartbeatError> {
    let request = ControllerRequest::BrokerHeartbeat {
        broker_id: r.broker_id,
        broker_epoch,
        current_metadata_offset: offset,
        want_fence: false,
        want_shutdown_now: shutting_down,
    };
    match quorum.request(request, REQUEST_TIMEOUT).await {
        Ok(ControllerResponse::Heartbeat(Ok(reply))) => Ok(reply),
        Ok(ControllerResponse::Heartbeat(Err(e)))
            if e.code == ErrorCode::STALE_BROKER_EPOCH.0
                || e.code == ErrorCode::BROKER_ID_NOT_REGISTERED.0 =>
        {
            Err(HeartbeatError::Stale)
        }
        Ok(other) => Err(HeartbeatError::Other(format!("{other:?}"))),
        Err(e) => Err(HeartbeatError::Other(e.to_string())),
    }
}

/// Asks the controller to move this broker's leaderships and waits until it says the broker
/// may go (or the wait times out: the session timeout then does the same, later).
async fn controlled_shutdown(
    quorum: &MetadataQuorum,
    r: &Registration,
    broker_epoch: i64,
    applied: &watch::Receiver<u64>,
) {
    tracing::info!("controlled shutdown: asking the controller to move leaderships away");
    let deadline = tokio::time::Instant::now() + CONTROLLED_SHUTDOWN_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        let offset = *applied.borrow();
        match heartbeat(quorum, r, broker_epoch, offset, true).await {
            Ok(reply) if reply.should_shutdown => {
                tracing::info!("controlled shutdown complete");
                return;
            }
            Ok(_) => {}
            Err(HeartbeatError::Stale) => return,
            Err(HeartbeatError::Other(e)) => {
                tracing::debug!(error = %e, "controlled shutdown heartbeat failed")
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::warn!("controlled shutdown timed out; leaderships move when the session expires");
}

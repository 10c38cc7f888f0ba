//! The sender: one background task per producer that fetches metadata, drains ready batches
//! into Produce requests (one per leader broker, at most `max.in.flight.requests.per.connection`
//! outstanding per broker), and completes, retries or fails each batch by its answer.
//!
//! Requests are written in order by the sender; their answers are awaited in tasks of their
//! own, and a finished request wakes the sender to refill the broker's window.

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gregor_protocol::ErrorCode;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::accumulator::{Batch, Failed};
use super::{Completion, RecordMetadata, Shared, State};
use crate::cluster::TopicInfo;
use crate::connection::BrokerConnection;
use crate::error::ClientError;

/// Highest Produce version used: v13 names topics by id, v3–v12 by name.
const MAX_PRODUCE_VERSION: i16 = 12;

/// Runs until the producer is closed (or dropped) and every record is completed.
pub(crate) async fn run(shared: Arc<Shared>) {
    loop {
        let notified = shared.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();

        refresh_metadata(&shared);

        let now = Instant::now();
        let (requests, leaderless, wake_at, done) = {
            let mut state = shared.state.lock();
            let expired = state
                .accumulator
                .expire(now, shared.config.delivery_timeout);
            let force = state.flushing > 0 || state.closing;
            let max_in_flight = shared.config.max_in_flight;
            let mut requests = Vec::new();
            let mut leaderless = Vec::new();
            let mut wake_at = None;
            // Fill every broker's window: each pass takes at most one batch per partition.
            loop {
                let st: &mut State = &mut state;
                let State {
                    accumulator,
                    in_flight,
                    ..
                } = st;
                let mut may_send = |broker: i32| {
                    let n = in_flight.entry(broker).or_insert(0);
                    if *n < max_in_flight {
                        *n += 1;
                        true
                    } else {
                        false
                    }
                };
                let drained = accumulator.drain(now, force, &mut may_send);
                wake_at = match (wake_at, drained.wake_at) {
                    (Some(a), Some(b)) => Some(std::cmp::min(a, b)),
                    (a, b) => a.or(b),
                };
                for topic in drained.leaderless {
                    if !leaderless.contains(&topic) {
                        leaderless.push(topic);
                    }
                }
                if drained.requests.is_empty() {
                    break;
                }
                requests.extend(drained.requests);
            }
            let done = state.closing && state.unfinished.is_empty();
            drop(state);
            fail_batches(&shared, expired, |n| {
                ClientError::Timeout(
                    shared.config.delivery_timeout.as_millis() as u64,
                    format!("{n} record(s) not delivered within delivery.timeout.ms"),
                )
            });
            (requests, leaderless, wake_at, done)
        };
        if done {
            return;
        }
        for topic in leaderless {
            shared.cluster.invalidate(&topic);
            shared.state.lock().stale.insert(topic);
        }
        for (broker, batches) in requests {
            if batches.is_empty() {
                release_slot(&shared, broker);
                continue;
            }
            dispatch(&shared, broker, batches).await;
        }
        // The next metadata attempt for a topic that still needs one; forget the others.
        let stale_wait = {
            let mut state = shared.state.lock();
            let unresolved = state.accumulator.unresolved_topics();
            let State {
                metadata_retry,
                stale,
                ..
            } = &mut *state;
            metadata_retry.retain(|t, _| stale.contains(t) || unresolved.contains(t));
            metadata_retry.values().min().copied()
        };
        let wake_at = match (wake_at, stale_wait) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match wake_at {
            Some(at) => {
                let _ = tokio::time::timeout_at(at.into(), notified).await;
            }
            None => notified.await,
        }
    }
}

/// Starts a metadata lookup, each in a task of its own, for every topic whose records wait
/// for it or that is marked stale and is due: an unknown topic or an unreachable broker then
/// never holds up the partitions that can be sent.
fn refresh_metadata(shared: &Arc<Shared>) {
    let now = Instant::now();
    let due: Vec<(String, bool)> = {
        let mut state = shared.state.lock();
        let mut topics = state.accumulator.unresolved_topics();
        topics.extend(
            state
                .stale
                .iter()
                .filter(|t| !topics.contains(t))
                .cloned()
                .collect::<Vec<_>>(),
        );
        topics.retain(|t| {
            !state.resolving.contains(t) && state.metadata_retry.get(t).is_none_or(|at| *at <= now)
        });
        for topic in &topics {
            state.resolving.insert(topic.clone());
        }
        topics
            .into_iter()
            .map(|t| {
                let stale = state.stale.contains(&t);
                (t, stale)
            })
            .collect()
    };
    for (topic, stale) in due {
        if stale {
            shared.cluster.invalidate(&topic);
        }
        let shared = Arc::clone(shared);
        tokio::spawn(async move {
            let result = shared.cluster.topic(&topic).await;
            resolved(&shared, topic, result);
            shared.wake.notify_one();
        });
    }
}

/// Takes a topic's metadata lookup in: its waiting records are batched, or, when the lookup
/// failed (or found no partitions yet), fail once older than `delivery.timeout.ms`, or at
/// once if the error cannot go away by waiting.
fn resolved(shared: &Shared, topic: String, result: crate::Result<TopicInfo>) {
    let now = Instant::now();
    let result = result.and_then(|info| {
        if info.partitions.is_empty() {
            Err(ClientError::Kafka {
                code: ErrorCode::LEADER_NOT_AVAILABLE,
                message: Some(format!("topic {topic} has no partitions yet")),
            })
        } else {
            Ok(info)
        }
    });
    let retry_at = now + shared.config.common.retry_backoff;
    let failed = {
        let mut state = shared.state.lock();
        state.resolving.remove(&topic);
        match result {
            Ok(info) => {
                let leaderless = info.partitions.iter().any(|p| p.leader < 0);
                state.stale.remove(&topic);
                if leaderless {
                    state.stale.insert(topic.clone());
                    state.metadata_retry.insert(topic, retry_at);
                } else {
                    state.metadata_retry.remove(&topic);
                }
                state.accumulator.set_metadata(info)
            }
            Err(error) => {
                tracing::debug!(%topic, %error, "producer metadata");
                let failed = if error.is_retriable() {
                    match now.checked_sub(shared.config.delivery_timeout) {
                        Some(cutoff) => {
                            state
                                .accumulator
                                .fail_unresolved(&topic, &error, Some(cutoff))
                        }
                        None => Vec::new(),
                    }
                } else {
                    state.stale.remove(&topic);
                    state.accumulator.fail_unresolved(&topic, &error, None)
                };
                state.metadata_retry.insert(topic, retry_at);
                failed
            }
        }
    };
    complete_failed(shared, failed);
}

/// Sends one Produce request with `batches` to `broker`; a task of its own waits for the
/// answer and settles each batch.
///
/// Requests to one broker must reach its socket in drain order, or a partition's batches could
/// be written out of order. So the request is encoded and queued here, in the sender's own
/// order: polling the send once puts its frame in the connection's write queue before the next
/// request is dispatched. Only waiting for the answer is detached. With no open connection to
/// the broker, a task of its own opens one and the batches go back to their queues, so a
/// broker that is slow to connect never holds up the others.
async fn dispatch(shared: &Arc<Shared>, broker: i32, mut batches: Vec<Batch>) {
    // Encode (and compress) outside the producer's lock; kept for retries.
    let mut encode_failures = Vec::new();
    batches.retain_mut(|batch| {
        if batch.bytes.is_some() {
            return true;
        }
        let builder = batch
            .builder
            .take()
            .expect("a drained batch has its builder");
        match builder.build() {
            Ok(bytes) => {
                batch.bytes = Some(Bytes::from(bytes));
                true
            }
            Err(e) => {
                encode_failures.push((
                    std::mem::take(&mut batch.completions),
                    ClientError::Protocol(format!("encoding a batch: {e}")),
                ));
                false
            }
        }
    });
    for (completions, error) in encode_failures {
        finish(
            shared,
            completions
                .into_iter()
                .map(|(c, _)| (c, Err(error.clone())))
                .collect(),
        );
    }

    let parts: Vec<(String, i32, Option<Bytes>)> = batches
        .iter()
        .map(|b| (b.topic.clone(), b.partition, b.bytes.clone()))
        .collect();
    if batches.is_empty() {
        release_slot(shared, broker);
        return;
    }
    let Some(connection) = shared.cluster.open_connection(broker) else {
        let shared = Arc::clone(shared);
        tokio::spawn(async move {
            match shared.cluster.connection(broker).await {
                Ok(_) => {
                    {
                        let mut state = shared.state.lock();
                        for batch in batches {
                            state.accumulator.requeue(batch);
                        }
                    }
                    release_slot(&shared, broker);
                }
                Err(e) => settle(&shared, broker, batches, Err(e)),
            }
        });
        return;
    };
    let mut send = Box::pin(tokio::task::unconstrained(send_request(
        connection,
        shared.config.acks,
        shared.config.common.request_timeout,
        parts,
    )));
    let first = std::future::poll_fn(|cx| Poll::Ready(send.as_mut().poll(cx))).await;
    match first {
        Poll::Ready(result) => settle(shared, broker, batches, result),
        Poll::Pending => {
            let shared = Arc::clone(shared);
            tokio::spawn(async move {
                let result = send.await;
                settle(&shared, broker, batches, result);
            });
        }
    }
}

/// Completes, requeues or fails each batch of a request by its answer.
fn settle(
    shared: &Shared,
    broker: i32,
    batches: Vec<Batch>,
    result: crate::Result<Vec<crate::Result<(i64, i64)>>>,
) {
    let now = Instant::now();
    let mut retry = Vec::new();
    let mut settled: Vec<(Completion, crate::Result<RecordMetadata>)> = Vec::new();
    let mut stale = Vec::new();
    match result {
        Ok(answers) => {
            for (mut batch, answer) in batches.into_iter().zip(answers) {
                match answer {
                    Ok((base_offset, log_append_time)) => {
                        for (i, (completion, timestamp)) in std::mem::take(&mut batch.completions)
                            .into_iter()
                            .enumerate()
                        {
                            let metadata = RecordMetadata {
                                topic: batch.topic.clone(),
                                partition: batch.partition,
                                offset: if base_offset < 0 {
                                    -1
                                } else {
                                    base_offset + i as i64
                                },
                                timestamp: if log_append_time >= 0 {
                                    log_append_time
                                } else {
                                    timestamp
                                },
                            };
                            settled.push((completion, Ok(metadata)));
                        }
                    }
                    Err(error) => settle_error(
                        shared,
                        batch,
                        error,
                        now,
                        &mut retry,
                        &mut settled,
                        &mut stale,
                    ),
                }
            }
        }
        Err(error) => {
            for batch in batches {
                settle_error(
                    shared,
                    batch,
                    error.clone(),
                    now,
                    &mut retry,
                    &mut settled,
                    &mut stale,
                );
            }
        }
    }
    for topic in &stale {
        shared.cluster.invalidate(topic);
    }
    {
        let mut state = shared.state.lock();
        for batch in retry {
            state.accumulator.requeue(batch);
        }
        state.stale.extend(stale);
    }
    finish(shared, settled);
    release_slot(shared, broker);
}

/// A failed batch: back in its queue after `retry.backoff.ms` if the error is retriable and
/// retries and `delivery.timeout.ms` allow, else its records fail.
fn settle_error(
    shared: &Shared,
    mut batch: Batch,
    error: ClientError,
    now: Instant,
    retry: &mut Vec<Batch>,
    settled: &mut Vec<(Completion, crate::Result<RecordMetadata>)>,
    stale: &mut Vec<String>,
) {
    let config = &shared.config;
    let refresh = matches!(
        error.code(),
        Some(ErrorCode::NOT_LEADER_OR_FOLLOWER)
            | Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)
            | Some(ErrorCode::LEADER_NOT_AVAILABLE)
    ) || matches!(
        error,
        ClientError::Connect { .. } | ClientError::Disconnected { .. }
    );
    if refresh && !stale.contains(&batch.topic) {
        stale.push(batch.topic.clone());
    }
    let in_time =
        now.duration_since(batch.created) + config.common.retry_backoff < config.delivery_timeout;
    if error.is_retriable() && batch.attempts < config.retries && in_time {
        tracing::debug!(topic = %batch.topic, partition = batch.partition, %error, attempt = batch.attempts + 1, "retrying a batch");
        batch.attempts += 1;
        batch.retry_at = Some(now + config.common.retry_backoff);
        retry.push(batch);
    } else {
        for (completion, _) in batch.completions {
            settled.push((completion, Err(error.clone())));
        }
    }
}

/// Sends the request; per batch, the base offset and log append time, or the error.
///
/// Nothing here awaits before the connection's write: see [`dispatch`].
async fn send_request(
    connection: Arc<BrokerConnection>,
    acks: i16,
    timeout: Duration,
    batches: Vec<(String, i32, Option<Bytes>)>,
) -> crate::Result<Vec<crate::Result<(i64, i64)>>> {
    let version = connection.version::<ProduceRequest>(MAX_PRODUCE_VERSION)?;
    let mut topics: Vec<TopicProduceData> = Vec::new();
    for (topic, partition, bytes) in &batches {
        let data = PartitionProduceData::default()
            .with_index(*partition)
            .with_records(bytes.clone());
        match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
            Some(t) => t.partition_data.push(data),
            None => topics.push(
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(topic.clone())))
                    .with_partition_data(vec![data]),
            ),
        }
    }
    let request = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(timeout.as_millis().min(i32::MAX as u128) as i32)
        .with_topic_data(topics);
    if acks == 0 {
        connection.send_no_response(&request, version)?;
        return Ok(batches.iter().map(|_| Ok((-1, -1))).collect());
    }
    let response = connection.send_at(&request, version).await?;
    Ok(batches
        .iter()
        .map(|(topic, partition, _)| {
            let answer = response
                .responses
                .iter()
                .filter(|t| t.name.0.as_str() == topic)
                .flat_map(|t| t.partition_responses.iter())
                .find(|p| p.index == *partition);
            match answer {
                None => Err(ClientError::Protocol(format!(
                    "no answer for {topic}-{partition} in the Produce response"
                ))),
                Some(p) => match ClientError::from_code(
                    p.error_code,
                    p.error_message.as_ref().map(|m| m.as_str()).or_else(|| {
                        p.record_errors
                            .first()
                            .and_then(|e| e.batch_index_error_message.as_ref().map(|m| m.as_str()))
                    }),
                ) {
                    Some(e) => Err(e),
                    None => Ok((p.base_offset, p.log_append_time_ms)),
                },
            }
        })
        .collect())
}

fn release_slot(shared: &Shared, broker: i32) {
    {
        let mut state = shared.state.lock();
        if let Some(n) = state.in_flight.get_mut(&broker) {
            *n = n.saturating_sub(1);
        }
    }
    shared.wake.notify_one();
}

fn fail_batches(shared: &Shared, batches: Vec<Batch>, error: impl Fn(usize) -> ClientError) {
    let mut settled = Vec::new();
    for batch in batches {
        let n = batch.completions.len();
        let e = error(n);
        for (completion, _) in batch.completions {
            settled.push((completion, Err(e.clone())));
        }
    }
    finish(shared, settled);
}

fn complete_failed(shared: &Shared, failed: Vec<Failed>) {
    finish(
        shared,
        failed.into_iter().map(|(c, e)| (c, Err(e))).collect(),
    );
}

/// Hands results to their callers (outside the lock: a callback may send again), then counts
/// the records as done and wakes `flush`/`close` when none are left.
pub(crate) fn finish(shared: &Shared, settled: Vec<(Completion, crate::Result<RecordMetadata>)>) {
    if settled.is_empty() {
        return;
    }
    let mut seqs = Vec::with_capacity(settled.len());
    for (completion, result) in settled {
        seqs.push(completion.seq);
        completion.complete(result);
    }
    let idle = {
        let mut state = shared.state.lock();
        for seq in &seqs {
            state.unfinished.remove(seq);
        }
        state.unfinished.is_empty()
    };
    shared.finished.notify_waiters();
    if idle {
        shared.wake.notify_one();
    }
}

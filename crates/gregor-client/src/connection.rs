//! One TCP connection to one broker, with requests pipelined: many may be in flight, and
//! each response finds its caller by correlation id (Kafka answers in order per connection,
//! the id makes that checkable).
//!
//! Frames are written by one writer task per connection, fed through a channel: a caller
//! enqueues its whole frame (and registers for the response) without awaiting, so a caller
//! whose future is dropped — a timeout, a `select!` — can never leave half a frame on the
//! socket and corrupt every later request.
//!
//! On connect the client asks `ApiVersions` which versions the broker speaks and afterwards
//! picks, per request, the highest version both sides know ([`BrokerConnection::version`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{mpsc, oneshot};

use crate::error::{ClientError, Result};

/// Largest response accepted (Kafka's `socket.request.max.bytes` default is 100 MiB on the
/// broker side; a response bigger than this is a broken stream).
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

type Pending = HashMap<i32, (i16, oneshot::Sender<Result<Bytes>>)>;

/// A connection to one broker.
pub struct BrokerConnection {
    addr: String,
    client_id: String,
    /// Whole frames for the writer task, in the order they were enqueued.
    frames: mpsc::UnboundedSender<BytesMut>,
    pending: Arc<Mutex<Pending>>,
    next_correlation_id: AtomicI32,
    versions: HashMap<i16, (i16, i16)>,
    closed: Arc<AtomicBool>,
    request_timeout: Duration,
}

impl BrokerConnection {
    /// Connects to `addr` and learns the broker's API versions.
    pub async fn connect(
        addr: &str,
        client_id: &str,
        request_timeout: Duration,
    ) -> Result<Arc<BrokerConnection>> {
        let failed = |e: &dyn std::fmt::Display| ClientError::Connect {
            addr: addr.to_string(),
            message: e.to_string(),
        };
        let stream = tokio::time::timeout(request_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| failed(&"connection timed out"))?
            .map_err(|e| failed(&e))?;
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let pending: Arc<Mutex<Pending>> = Arc::new(Mutex::new(HashMap::new()));
        let closed = Arc::new(AtomicBool::new(false));
        let (frames, queued) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(
            write,
            queued,
            addr.to_string(),
            Arc::clone(&pending),
            Arc::clone(&closed),
        ));
        tokio::spawn(read_loop(
            read,
            addr.to_string(),
            Arc::clone(&pending),
            Arc::clone(&closed),
        ));
        let mut connection = BrokerConnection {
            addr: addr.to_string(),
            client_id: client_id.to_string(),
            frames,
            pending,
            next_correlation_id: AtomicI32::new(1),
            versions: HashMap::new(),
            closed,
            request_timeout,
        };
        connection.versions = connection.negotiate().await?;
        Ok(Arc::new(connection))
    }

    /// ApiVersions v3 (flexible, sends the client's name); a broker that does not speak it
    /// answers in v0 with its ranges, which is all we need.
    async fn negotiate(&self) -> Result<HashMap<i16, (i16, i16)>> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("gregor-client"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let bytes = self
            .send_raw(ApiKey::ApiVersions, 3, &request, self.request_timeout)
            .await?;
        let mut buf = bytes;
        // A broker refusing v3 answers with a v0 body (error 35 and its ranges).
        let response = ApiVersionsResponse::decode(&mut buf.clone(), 3)
            .or_else(|_| ApiVersionsResponse::decode(&mut buf, 0))
            .map_err(|e| ClientError::Protocol(format!("ApiVersions: {e}")))?;
        if response.error_code != 0 && response.api_keys.is_empty() {
            return Err(ClientError::from_code(response.error_code, None).expect("non-zero"));
        }
        Ok(response
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect())
    }

    /// The broker's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether the connection broke (it is then replaced on next use).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The version to use for `R`: the highest both the broker and this library know, capped
    /// at `max` (the newest version whose semantics the caller implements).
    pub fn version<R: Request>(&self, max: i16) -> Result<i16> {
        let ours = R::VERSIONS;
        let (min, theirs) = self.versions.get(&R::KEY).copied().ok_or_else(|| {
            let api = ApiKey::try_from(R::KEY)
                .map_or_else(|()| format!("API key {}", R::KEY), |k| format!("{k:?}"));
            ClientError::Protocol(format!("broker {} does not support {api}", self.addr))
        })?;
        let version = theirs.min(ours.max).min(max);
        if version < min.max(ours.min) {
            return Err(ClientError::Protocol(format!(
                "no common version of {:?} with broker {} (broker {min}-{theirs}, client {}-{})",
                ApiKey::try_from(R::KEY).map_err(|_| ()),
                self.addr,
                ours.min,
                max.min(ours.max)
            )));
        }
        Ok(version)
    }

    /// Sends `request` at the best common version (up to `max`) and waits for its response
    /// at most `request.timeout.ms`.
    pub async fn send<R: Request>(&self, request: &R, max: i16) -> Result<R::Response> {
        self.send_with_timeout(request, max, self.request_timeout)
            .await
    }

    /// Like [`send`](Self::send) but waits up to `timeout` instead of `request.timeout.ms`:
    /// for requests the broker may legitimately park longer, such as JoinGroup, which the
    /// Java client lets wait for the rebalance timeout plus 5 s.
    pub async fn send_with_timeout<R: Request>(
        &self,
        request: &R,
        max: i16,
        timeout: Duration,
    ) -> Result<R::Response> {
        let version = self.version::<R>(max)?;
        self.send_at_with_timeout(request, version, timeout).await
    }

    /// Sends `request` at exactly `version`, waiting at most `request.timeout.ms`.
    pub async fn send_at<R: Request>(&self, request: &R, version: i16) -> Result<R::Response> {
        self.send_at_with_timeout(request, version, self.request_timeout)
            .await
    }

    async fn send_at_with_timeout<R: Request>(
        &self,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response> {
        let key = api_key::<R>()?;
        let mut body = self.send_raw(key, version, request, timeout).await?;
        R::Response::decode(&mut body, version)
            .map_err(|e| ClientError::Protocol(format!("decoding {key:?} v{version}: {e}")))
    }

    /// Sends a request that gets no response (Produce with `acks=0`); returns once the frame
    /// is queued for writing.
    pub fn send_no_response<R: Request>(&self, request: &R, version: i16) -> Result<()> {
        let key = api_key::<R>()?;
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::Relaxed);
        let frame = self.frame(key, version, correlation_id, request)?;
        self.enqueue(frame)
    }

    fn frame<R: Encodable + HeaderVersion>(
        &self,
        key: ApiKey,
        version: i16,
        correlation_id: i32,
        request: &R,
    ) -> Result<BytesMut> {
        let encode_failed = |e: &dyn std::fmt::Display| {
            ClientError::Protocol(format!("encoding {key:?} v{version}: {e}"))
        };
        let mut frame = BytesMut::new();
        frame.put_i32(0);
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_string(self.client_id.clone())))
            .encode(&mut frame, key.request_header_version(version))
            .map_err(|e| encode_failed(&e))?;
        request
            .encode(&mut frame, version)
            .map_err(|e| encode_failed(&e))?;
        let size = (frame.len() - 4) as i32;
        frame[0..4].copy_from_slice(&size.to_be_bytes());
        Ok(frame)
    }

    /// Hands a whole frame to the writer task (never awaits, so it cannot be cut short).
    fn enqueue(&self, frame: BytesMut) -> Result<()> {
        if self.is_closed() {
            return Err(self.disconnected("connection closed"));
        }
        self.frames
            .send(frame)
            .map_err(|_| self.disconnected("connection closed"))
    }

    async fn send_raw<R: Encodable + HeaderVersion>(
        &self,
        key: ApiKey,
        version: i16,
        request: &R,
        timeout: Duration,
    ) -> Result<Bytes> {
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::Relaxed);
        let frame = self.frame(key, version, correlation_id, request)?;
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .insert(correlation_id, (key.response_header_version(version), tx));
        // From here on a dropped future only forgets its pending entry; the frame itself is
        // already whole in the writer's queue.
        let _forget = ForgetOnDrop {
            pending: &self.pending,
            correlation_id,
        };
        self.enqueue(frame)?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(self.disconnected("connection closed")),
            Err(_) => Err(ClientError::Timeout(
                timeout.as_millis() as u64,
                format!("{key:?} to {}", self.addr),
            )),
        }
    }

    fn disconnected(&self, message: &str) -> ClientError {
        self.closed.store(true, Ordering::Release);
        ClientError::Disconnected {
            addr: self.addr.clone(),
            message: message.to_string(),
        }
    }
}

/// The API key of `R`, as the header needs it.
fn api_key<R: Request>() -> Result<ApiKey> {
    ApiKey::try_from(R::KEY)
        .map_err(|_| ClientError::Protocol(format!("unknown API key {}", R::KEY)))
}

/// Removes a request's pending entry when its caller stops waiting (answered, timed out or
/// dropped), so a late answer is discarded instead of kept forever.
struct ForgetOnDrop<'a> {
    pending: &'a Mutex<Pending>,
    correlation_id: i32,
}

impl Drop for ForgetOnDrop<'_> {
    fn drop(&mut self) {
        self.pending.lock().remove(&self.correlation_id);
    }
}

/// Writes queued frames in order; on a write error marks the connection closed and fails
/// every request in flight (their frames may never have reached the broker).
async fn write_loop(
    mut write: OwnedWriteHalf,
    mut queued: mpsc::UnboundedReceiver<BytesMut>,
    addr: String,
    pending: Arc<Mutex<Pending>>,
    closed: Arc<AtomicBool>,
) {
    while let Some(frame) = queued.recv().await {
        if let Err(e) = write.write_all(&frame).await {
            closed.store(true, Ordering::Release);
            fail_all(&pending, &addr, &e.to_string());
            return;
        }
    }
}

/// Fails every request waiting for an answer on a connection that ended.
fn fail_all(pending: &Mutex<Pending>, addr: &str, reason: &str) {
    for (_, (_, tx)) in pending.lock().drain() {
        let _ = tx.send(Err(ClientError::Disconnected {
            addr: addr.to_string(),
            message: reason.to_string(),
        }));
    }
}

/// Reads responses and hands each to the request with its correlation id; fails every
/// request in flight when the connection ends.
async fn read_loop(
    mut read: tokio::net::tcp::OwnedReadHalf,
    addr: String,
    pending: Arc<Mutex<Pending>>,
    closed: Arc<AtomicBool>,
) {
    let reason = loop {
        let size = match read.read_i32().await {
            Ok(size) if size >= 4 && (size as usize) <= MAX_RESPONSE_BYTES => size as usize,
            Ok(size) => break format!("invalid response size {size}"),
            Err(e) => break e.to_string(),
        };
        let mut buf = vec![0u8; size];
        if let Err(e) = read.read_exact(&mut buf).await {
            break e.to_string();
        }
        let mut bytes = Bytes::from(buf);
        let correlation_id = (&bytes[0..4]).get_i32();
        let Some((header_version, tx)) = pending.lock().remove(&correlation_id) else {
            // A request that timed out meanwhile: drop its late answer.
            continue;
        };
        let result = ResponseHeader::decode(&mut bytes, header_version)
            .map(|_| bytes)
            .map_err(|e| ClientError::Protocol(format!("response header: {e}")));
        let _ = tx.send(result);
    };
    closed.store(true, Ordering::Release);
    tracing::debug!(%addr, %reason, "connection closed");
    fail_all(&pending, &addr, &reason);
}

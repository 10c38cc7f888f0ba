//! `BrokerChannel`: this broker's connections to other brokers' inter-broker listener, for the
//! requests brokers send each other outside replication (transaction markers, KIP-890
//! verification). One pipelined connection per address, replaced when it breaks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use gregor_client::connection::BrokerConnection;
use gregor_client::error::ClientError;
use gregor_metadata::MetadataImage;
use gregor_metadata::records::BrokerId;
use kafka_protocol::protocol::Request;

/// Connections to other brokers, by address.
pub struct BrokerChannel {
    listener: String,
    client_id: String,
    timeout: Duration,
    connections: tokio::sync::Mutex<HashMap<String, Arc<BrokerConnection>>>,
}

impl BrokerChannel {
    /// Connects on `listener` (the inter-broker listener's name) as `client_id`, with
    /// `timeout` per request.
    pub fn new(listener: String, client_id: String, timeout: Duration) -> BrokerChannel {
        BrokerChannel {
            listener,
            client_id,
            timeout,
            connections: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Where `broker` listens for other brokers, if it is registered and not fenced.
    pub fn address_of(&self, image: &MetadataImage, broker: BrokerId) -> Option<String> {
        image
            .brokers
            .get(&broker)
            .filter(|b| !b.fenced)
            .and_then(|b| b.endpoint(&self.listener))
            .map(|e| format!("{}:{}", e.host, e.port))
    }

    /// Sends `request` at `version` to the broker at `address` and waits for its answer at
    /// most the per-request timeout. After a failure the connection is forgotten, so the next
    /// request reconnects.
    pub async fn send_at<R: Request>(
        &self,
        address: &str,
        request: &R,
        version: i16,
    ) -> Result<R::Response, ClientError> {
        let answer = async {
            let conn = self.connection(address).await?;
            tokio::time::timeout(self.timeout, conn.send_at(request, version))
                .await
                .map_err(|_| {
                    ClientError::Timeout(
                        u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
                        format!("waiting for {address}"),
                    )
                })?
        }
        .await;
        if answer.is_err() {
            self.connections.lock().await.remove(address);
        }
        answer
    }

    /// The connection to `address`, opened if there is none or it broke.
    async fn connection(&self, address: &str) -> Result<Arc<BrokerConnection>, ClientError> {
        let mut connections = self.connections.lock().await;
        if let Some(conn) = connections.get(address).filter(|c| !c.is_closed()) {
            return Ok(Arc::clone(conn));
        }
        let conn = BrokerConnection::connect(address, &self.client_id, self.timeout).await?;
        connections.insert(address.to_string(), Arc::clone(&conn));
        Ok(conn)
    }
}

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

    /// The connection to `address`, opened if there is none or it broke.
    pub async fn connection(&self, address: &str) -> Result<Arc<BrokerConnection>, ClientError> {
        let mut connections = self.connections.lock().await;
        if let Some(conn) = connections.get(address).filter(|c| !c.is_closed()) {
            return Ok(Arc::clone(conn));
        }
        let conn = BrokerConnection::connect(address, &self.client_id, self.timeout).await?;
        connections.insert(address.to_string(), Arc::clone(&conn));
        Ok(conn)
    }

    /// Forgets the connection to `address` after a failure, so the next use reconnects.
    pub async fn forget(&self, address: &str) {
        self.connections.lock().await.remove(address);
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

//! Listener endpoints: `NAME://host:port`, as Kafka writes them in `listeners` and
//! `advertised.listeners`.

use std::fmt;

use super::ConfigError;

/// One endpoint the broker binds (`listeners`) or tells clients to connect to
/// (`advertised.listeners`). Kept as strings rather than a `SocketAddr` because Kafka allows
/// host names (`localhost`, `broker-1.example`) that are resolved at bind or connect time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// The listener name, upper-cased as Kafka normalises it (`PLAINTEXT`, `INTERNAL`…); it
    /// selects the security protocol through `listener.security.protocol.map`.
    pub name: String,
    /// Host name or IP address, without IPv6 brackets. In `listeners`, an empty host in the
    /// config (`PLAINTEXT://:9092`) is stored as `0.0.0.0`: bind every interface.
    pub host: String,
    /// TCP port. In `listeners`, 0 asks the OS for a free port; in `advertised.listeners`, 0
    /// (as inherited from such a listener) stands for the port the same-named listener bound.
    pub port: u16,
}

impl Listener {
    /// `host:port`, bracketing an IPv6 host, in the form `TcpListener::bind` and clients
    /// accept.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Listener {
    /// Kafka's own notation, `NAME://host:port`, so that logs read like Kafka's.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.name, self.address())
    }
}

/// Parses one `NAME://host:port` entry of the list under `key`. The host is returned as
/// written (possibly empty): what an empty host means differs between `listeners` and
/// `advertised.listeners`, so the caller decides.
pub(crate) fn parse_listener(key: &str, entry: &str) -> Result<Listener, ConfigError> {
    let bad = |expected: &str| ConfigError::InvalidValue {
        key: key.to_string(),
        value: entry.to_string(),
        expected: expected.to_string(),
    };
    const SHAPE: &str = "listeners written as NAME://host:port, e.g. PLAINTEXT://127.0.0.1:9092, \
                         PLAINTEXT://:9092 or PLAINTEXT://[::1]:9092";
    let (name, rest) = entry.split_once("://").ok_or_else(|| bad(SHAPE))?;
    let name = name.trim();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(bad(
            "a listener name of letters, digits, '_' or '-' before ://",
        ));
    }
    let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or_else(|| bad(SHAPE))?;
        let port = after.strip_prefix(':').ok_or_else(|| bad(SHAPE))?;
        (host, port)
    } else {
        // Kafka's pattern also takes an unbracketed IPv6 host: the port follows the last ':'.
        rest.rsplit_once(':').ok_or_else(|| bad(SHAPE))?
    };
    if host
        .chars()
        .any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':' | '%')))
    {
        return Err(bad("a host name or IP address"));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| bad("a port from 0 to 65535 after the host"))?;
    Ok(Listener {
        name: name.to_ascii_uppercase(),
        host: host.to_string(),
        port,
    })
}

/// Parses a comma-separated list of listeners; names must be unique, as Kafka requires.
pub(crate) fn parse_listeners(key: &str, value: &str) -> Result<Vec<Listener>, ConfigError> {
    let mut listeners: Vec<Listener> = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let listener = parse_listener(key, entry)?;
        if listeners.iter().any(|l| l.name == listener.name) {
            return Err(ConfigError::Invalid {
                key: key.to_string(),
                message: format!(
                    "listener name {} appears twice; each listener needs its own name",
                    listener.name
                ),
            });
        }
        listeners.push(listener);
    }
    Ok(listeners)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(name: &str, host: &str, port: u16) -> Listener {
        Listener {
            name: name.into(),
            host: host.into(),
            port,
        }
    }

    #[test]
    fn parses_kafka_listener_forms() {
        assert_eq!(
            parse_listeners(
                "listeners",
                "PLAINTEXT://127.0.0.1:9092, internal://:0,V6://[::1]:19092,RAW://::1:7,\
                 H://broker-1.example:1"
            )
            .unwrap(),
            vec![
                l("PLAINTEXT", "127.0.0.1", 9092),
                l("INTERNAL", "", 0),
                l("V6", "::1", 19092),
                l("RAW", "::1", 7),
                l("H", "broker-1.example", 1),
            ]
        );
        assert_eq!(l("V6", "::1", 9092).to_string(), "V6://[::1]:9092");
        assert_eq!(l("P", "0.0.0.0", 0).address(), "0.0.0.0:0");
    }

    #[test]
    fn rejects_malformed_listeners() {
        for bad in [
            "127.0.0.1:9092",
            "PLAINTEXT://127.0.0.1",
            "PLAINTEXT://127.0.0.1:65536",
            "PLAINTEXT://127.0.0.1:-1",
            "PLAINTEXT://[::1:9092",
            "://127.0.0.1:9092",
            "PLAIN TEXT://h:1",
            "PLAINTEXT://h/x:1",
        ] {
            let err = parse_listeners("listeners", bad).unwrap_err().to_string();
            assert!(
                err.contains("listeners") && err.contains(bad),
                "{bad}: {err}"
            );
        }
        let err = parse_listeners("listeners", "A://:1,a://:2")
            .unwrap_err()
            .to_string();
        assert!(err.contains("A appears twice"), "{err}");
    }
}

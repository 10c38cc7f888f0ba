//! A single-node Gregor broker on a free port for the client's integration tests.

#![allow(dead_code)] // each test file uses its own subset

use gregor_broker::RunningBroker;
use gregor_broker::config::BrokerConfig;

/// A broker with its data in `dir`; `extra` are more `key=value` lines.
pub async fn start(dir: &std::path::Path, extra: &str) -> RunningBroker {
    let props = format!(
        "listeners=PLAINTEXT://127.0.0.1:0\nlog.dirs={}\ngroup.initial.rebalance.delay.ms=0\n{extra}",
        dir.display()
    );
    let (config, _) = BrokerConfig::from_properties(&props, &[]).unwrap();
    RunningBroker::start(config).await.unwrap()
}

/// `host:port` of the broker's first listener.
pub fn bootstrap(broker: &RunningBroker) -> String {
    broker.local_addrs()[0].to_string()
}

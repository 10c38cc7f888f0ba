//! The client tools: `gregor topics|produce|consume|groups|configs|cluster|perf`, the
//! counterparts of Kafka's `kafka-*.sh` scripts, built on `gregor-client` and working against
//! any Kafka-compatible cluster.
//!
//! Shared conventions: every tool takes `--bootstrap-server` (and Kafka's
//! `--command-config` properties file for client settings); results go to stdout as aligned
//! tables, or JSON with `--output json`; problems go to stderr as one `error: …` line naming
//! the Kafka error and what to do, with a non-zero exit code.

pub mod cluster;
pub mod configs;
pub mod consume;
pub mod groups;
pub mod output;
pub mod perf;
pub mod produce;
pub mod topics;

use std::future::Future;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

/// How to reach the cluster, shared by every tool.
#[derive(Args, Debug, Clone)]
pub struct ConnectArgs {
    /// Broker(s) to bootstrap from, host:port[,host:port...].
    #[arg(
        long = "bootstrap-server",
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap_server: String,
    /// A properties file with more client settings (client.id, request.timeout.ms...).
    #[arg(long = "command-config", value_name = "FILE")]
    pub command_config: Option<PathBuf>,
}

impl ConnectArgs {
    /// `bootstrap.servers` plus the `--command-config` file's pairs, for a client config.
    pub fn properties(&self) -> Result<Vec<(String, String)>> {
        let mut pairs = vec![(
            "bootstrap.servers".to_string(),
            self.bootstrap_server.clone(),
        )];
        if let Some(path) = &self.command_config {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            for line in text.lines().map(str::trim) {
                if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                    continue;
                }
                let (k, v) = line.split_once(['=', ':']).with_context(|| {
                    format!("{}: expected key=value, got {line:?}", path.display())
                })?;
                pairs.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        Ok(pairs)
    }
}

/// Runs a tool's async body on a fresh runtime.
pub fn block_on(work: impl Future<Output = Result<()>>) -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(work)
}

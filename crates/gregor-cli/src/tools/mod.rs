//! The client tools: `gregor topics|produce|consume|groups|configs|cluster|perf|transactions`, the
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
pub mod transactions;

use std::future::Future;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
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
            pairs.extend(read_properties(path)?);
        }
        Ok(pairs)
    }
}

/// The `key=value` (or `key: value`) lines of a Java properties file (`--command-config`,
/// `--producer.config`), skipping blank lines and `#`/`!` comments.
pub fn read_properties(path: &std::path::Path) -> Result<Vec<(String, String)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut pairs = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let (k, v) = line
            .split_once(['=', ':'])
            .with_context(|| format!("{}: expected key=value, got {line:?}", path.display()))?;
        pairs.push((k.trim().to_string(), v.trim().to_string()));
    }
    Ok(pairs)
}

/// Splits one `KEY=VALUE` argument of `flag` at its first `=` (the value may hold more): the
/// key trimmed and non-empty, the value as given, since a separator property may be a space.
/// Every tool's repeatable property flags parse through here so they all accept and refuse
/// the same input with the same message.
pub fn key_value<'a>(pair: &'a str, flag: &str) -> Result<(&'a str, &'a str)> {
    match pair.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim(), v)),
        _ => bail!("INVALID_CONFIG: {flag} expects KEY=VALUE, got {pair:?}"),
    }
}

/// Sets client property `key` in `pairs`, replacing an earlier value: the last one given wins,
/// as in Kafka's tools (so flags override the `--command-config` file).
pub fn set_property(pairs: &mut Vec<(String, String)>, key: &str, value: &str) {
    pairs.retain(|(k, _)| k != key);
    pairs.push((key.to_string(), value.to_string()));
}

/// Adds the `KEY=VALUE` arguments of `flag` (`--producer-property`, `--consumer-property`…)
/// to client properties with [`set_property`], values trimmed.
pub fn merge_properties(
    pairs: &mut Vec<(String, String)>,
    args: &[String],
    flag: &str,
) -> Result<()> {
    for arg in args {
        let (k, v) = key_value(arg, flag)?;
        set_property(pairs, k, v.trim());
    }
    Ok(())
}

/// Runs a tool's async body on a fresh runtime.
pub fn block_on(work: impl Future<Output = Result<()>>) -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(work)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_arguments_and_last_one_wins() {
        assert_eq!(key_value(" a.b = x=y ", "--f").unwrap(), ("a.b", " x=y "));
        for bad in ["novalue", "=x", " =x"] {
            let err = key_value(bad, "--f").unwrap_err().to_string();
            assert!(
                err.starts_with("INVALID_CONFIG: --f expects KEY=VALUE"),
                "{err}"
            );
        }
        let mut pairs = vec![("acks".to_string(), "1".to_string())];
        merge_properties(
            &mut pairs,
            &[
                "linger.ms=5".into(),
                "acks= all".into(),
                "linger.ms=7".into(),
            ],
            "--p",
        )
        .unwrap();
        assert_eq!(
            pairs,
            [
                ("acks".into(), "all".into()),
                ("linger.ms".into(), "7".into())
            ]
        );
        assert!(merge_properties(&mut pairs, &["oops".into()], "--p").is_err());
    }
}

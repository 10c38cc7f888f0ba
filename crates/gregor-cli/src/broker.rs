//! `gregor broker`: runs a broker from Kafka-style configuration.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use gregor_broker::config::{BrokerConfig, ConfigError};
use tracing::{info, warn};

/// How long leftover tasks get after the broker has shut down before the runtime drops them.
const RUNTIME_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// `gregor broker` arguments.
#[derive(Args)]
pub struct BrokerArgs {
    /// A Kafka-style server.properties file (listeners, log.dirs, node.id, log.retention.ms...).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Set or override one config key, as kafka-server-start's --override does (repeatable).
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

/// Runs the broker until SIGTERM/SIGINT.
pub fn run(args: &BrokerArgs) -> Result<()> {
    // Everything that can be wrong with the configuration fails here, before the runtime
    // starts, a port is bound or a directory is created.
    let config = load_config(args.config.as_deref(), &args.overrides)?;
    raise_open_file_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(async move {
        let shutdown = shutdown_signal()?;
        gregor_broker::run(config, shutdown).await?;
        anyhow::Ok(())
    });
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN_GRACE);
    result?;
    info!("broker stopped cleanly");
    Ok(())
}

/// Every connection and every segment file is a descriptor, and Kafka deployments expect
/// thousands of both; the common default soft limit of 1,024 would refuse connections long
/// before the broker is busy. Raise the soft limit to the hard limit, as Kafka's packaging
/// advises operators to do, and say what we got.
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => info!("open file limit: {limit}"),
        Err(e) => warn!("cannot raise the open file limit: {e}"),
    }
}

/// Reads the properties file (if any), applies the overrides and logs the keys Kafka would
/// also ignore.
fn load_config(path: Option<&Path>, overrides: &[String]) -> Result<BrokerConfig> {
    let text = match path {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?,
        None => String::new(),
    };
    let overrides = overrides
        .iter()
        .map(|o| parse_override(o))
        .collect::<Result<Vec<_>>>()?;
    let (config, ignored) =
        BrokerConfig::from_properties(&text, &overrides).map_err(|e| match (&e, path) {
            (ConfigError::Syntax { .. }, Some(path)) => {
                anyhow::Error::new(e).context(path.display().to_string())
            }
            _ => anyhow::Error::new(e),
        })?;
    for key in ignored {
        warn!("the configuration '{key}' was supplied but isn't a known config; ignoring it");
    }
    Ok(config)
}

/// Splits `key=value` at the first `=`; the value may itself contain `=`.
fn parse_override(text: &str) -> Result<(String, String)> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.trim().to_string()))
        }
        _ => bail!("--override expects key=value, got {text:?}"),
    }
}

/// A future that completes on the first SIGTERM or SIGINT. The handlers are installed now, so
/// a signal that arrives while the broker is still starting is not lost.
#[cfg(unix)]
fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    Ok(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        info!("received {name}: shutting down (send it again to exit at once)");
        // A shutdown stuck on a disk or a client should not need kill -9 to end.
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            warn!("second signal: exiting without finishing the clean shutdown");
            std::process::exit(1);
        });
    })
}

/// Elsewhere only Ctrl-C is available.
#[cfg(not(unix))]
fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static> {
    Ok(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            info!("received Ctrl-C: shutting down");
        } else {
            std::future::pending::<()>().await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_split_at_the_first_equals_sign() {
        assert_eq!(
            parse_override(" a.b = x=y ").unwrap(),
            ("a.b".to_string(), "x=y".to_string())
        );
        assert_eq!(
            parse_override("k=").unwrap(),
            ("k".to_string(), String::new())
        );
        assert!(parse_override("=v").is_err());
        assert!(parse_override("novalue").is_err());
    }
}

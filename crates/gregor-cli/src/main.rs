//! `gregor`: the one binary of the Gregor platform.
//!
//! `gregor broker [--config server.properties] [--override key=value]...` starts a broker
//! the way `kafka-server-start.sh server.properties --override key=value` does, so scripts
//! written for Kafka carry over. With no arguments it runs a single-node cluster on
//! `127.0.0.1:9092` with data in `./gregor-data`.
//!
//! Startup order matters to scripts: the whole configuration is read and checked before
//! anything binds or touches a disk, and any problem is one `error: <message>` line on stderr
//! with exit code 1. SIGTERM or SIGINT asks the broker for a clean shutdown (exit 0); a second
//! signal while it shuts down exits at once. Logs go to stderr, filtered by `RUST_LOG`
//! (default `info`).

mod broker;
mod tools;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "gregor",
    version,
    about = "Gregor: a Kafka-compatible event-streaming platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker (by default a single-node cluster on 127.0.0.1:9092, data in ./gregor-data).
    Broker(broker::BrokerArgs),
    /// Create, list, describe, alter and delete topics (kafka-topics).
    Topics(tools::topics::TopicsArgs),
    /// Produce lines from stdin or a file (kafka-console-producer).
    Produce(tools::produce::ProduceArgs),
    /// Consume and print records (kafka-console-consumer).
    Consume(tools::consume::ConsumeArgs),
    /// List, describe, reset and delete consumer groups (kafka-consumer-groups).
    Groups(tools::groups::GroupsArgs),
    /// Describe and alter topic configs (kafka-configs).
    Configs(tools::configs::ConfigsArgs),
    /// Describe the cluster (brokers, controller, cluster id).
    Cluster(tools::cluster::ClusterArgs),
    /// Producer and consumer load tests (kafka-producer-perf-test, kafka-consumer-perf-test).
    Perf(tools::perf::PerfArgs),
    /// List and describe transactions and partitions' producers (kafka-transactions).
    Transactions(tools::transactions::TransactionsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The broker logs its life at info; the tools print results and say only what goes wrong.
    init_logging(if matches!(cli.command, Command::Broker(_)) {
        "info"
    } else {
        "warn"
    });
    let result = match cli.command {
        Command::Broker(args) => broker::run(&args),
        Command::Topics(args) => tools::block_on(tools::topics::run(args)),
        Command::Produce(args) => tools::block_on(tools::produce::run(args)),
        Command::Consume(args) => tools::block_on(tools::consume::run(args)),
        Command::Groups(args) => tools::block_on(tools::groups::run(args)),
        Command::Configs(args) => tools::block_on(tools::configs::run(args)),
        Command::Cluster(args) => tools::block_on(tools::cluster::run(args)),
        Command::Transactions(args) => tools::block_on(tools::transactions::run(args)),
        Command::Perf(args) => tools::block_on(tools::perf::run(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_message(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line. A cause whose text its parent already shows (an
/// error that both prints and chains its source) is left out, so nothing reads twice.
fn error_message(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

/// Logs to stderr at the level `RUST_LOG` asks for, `default` otherwise.
fn init_logging(default: &str) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) => EnvFilter::try_new(&spec).unwrap_or_else(|e| {
            eprintln!("warning: ignoring RUST_LOG={spec:?} ({e}); logging at {default}");
            EnvFilter::new(default)
        }),
        Err(_) => EnvFilter::new(default),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in files and pipes scripts read.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn error_message_shows_each_cause_once() {
        /// Prints its source and also chains it, as `#[error("..: {source}")] #[source]` does.
        #[derive(Debug)]
        struct Bind(std::io::Error);
        impl std::fmt::Display for Bind {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "cannot listen on 127.0.0.1:9092: {}", self.0)
            }
        }
        impl std::error::Error for Bind {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "address in use");
        let error = anyhow::Error::new(Bind(io)).context("broker failed");
        assert_eq!(
            error_message(&error),
            "broker failed: cannot listen on 127.0.0.1:9092: address in use"
        );
        let missing = std::fs::read_to_string("/nonexistent/x")
            .context("cannot read config file /nonexistent/x")
            .unwrap_err();
        assert!(
            error_message(&missing).starts_with("cannot read config file /nonexistent/x: "),
            "{}",
            error_message(&missing)
        );
    }
}

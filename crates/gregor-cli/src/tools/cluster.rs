//! `gregor cluster describe`: the cluster id, the active controller and the live brokers
//! (DescribeCluster, or Metadata on brokers without it). Also home of [`admin`], the admin
//! client every admin tool builds from `--bootstrap-server`/`--command-config`.

use anyhow::Result;
use clap::{Args, Subcommand};
use gregor_client::admin::Admin;
use gregor_client::config::CommonConfig;
use serde_json::json;

use super::ConnectArgs;

use super::output::{OutputFormat, client_error, emit, emit_line, print_json, table};

/// Tools answer a person waiting at a terminal: unless `--command-config` says otherwise,
/// give up on a silent broker after 10 s rather than the client default of 30 s.
const TOOL_REQUEST_TIMEOUT_MS: &str = "10000";

/// The admin client for a tool's `--bootstrap-server` and `--command-config`.
pub fn admin(connect: &ConnectArgs) -> Result<Admin> {
    let mut pairs = connect.properties()?;
    if !pairs.iter().any(|(k, _)| k == "request.timeout.ms") {
        pairs.push((
            "request.timeout.ms".to_string(),
            TOOL_REQUEST_TIMEOUT_MS.to_string(),
        ));
    }
    let config = CommonConfig::from_properties(pairs).map_err(client_error)?;
    Ok(Admin::new(config))
}

/// `gregor cluster` arguments.
#[derive(Args, Debug)]
pub struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Subcommand, Debug)]
enum ClusterCommand {
    /// Show the cluster id, the controller and the brokers (host:port, rack).
    Describe {
        #[command(flatten)]
        connect: ConnectArgs,
        /// table or json.
        #[arg(long, value_enum, default_value_t)]
        output: OutputFormat,
    },
}

/// Runs `gregor cluster`.
pub async fn run(args: ClusterArgs) -> Result<()> {
    let ClusterCommand::Describe { connect, output } = args.command;
    let cluster = admin(&connect)?
        .describe_cluster()
        .await
        .map_err(client_error)?;
    match output {
        OutputFormat::Json => print_json(&json!({
            "cluster_id": cluster.cluster_id,
            "controller": cluster.controller,
            "brokers": cluster.brokers.iter().map(|b| json!({
                "id": b.id,
                "host": b.host,
                "port": b.port,
                "rack": b.rack,
            })).collect::<Vec<_>>(),
        })),
        OutputFormat::Table => {
            emit_line!(
                "Cluster ID: {}",
                cluster.cluster_id.as_deref().unwrap_or("-")
            );
            emit_line!(
                "Controller: {}",
                cluster
                    .controller
                    .map_or_else(|| "-".to_string(), |c| c.to_string())
            );
            let rows: Vec<Vec<String>> = cluster
                .brokers
                .iter()
                .map(|b| {
                    vec![
                        b.id.to_string(),
                        b.addr(),
                        b.rack.clone().unwrap_or_else(|| "-".to_string()),
                        if Some(b.id) == cluster.controller {
                            "yes".to_string()
                        } else {
                            "no".to_string()
                        },
                    ]
                })
                .collect();
            emit(&table(&["ID", "HOST:PORT", "RACK", "CONTROLLER"], &rows));
        }
    }
    Ok(())
}

//! `gregor transactions list|describe|describe-producers`: the counterpart of Kafka's
//! `kafka-transactions.sh`, for finding who holds a transaction open and what a partition's
//! producers last wrote (a hanging transaction keeps a partition's last stable offset, and so
//! every `read_committed` consumer, behind).

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use gregor_client::admin::TopicPartition;
use serde_json::json;

use super::ConnectArgs;
use super::cluster::admin;
use super::output::{OutputFormat, client_error, emit, item_error, print_json, table};

/// `gregor transactions` arguments.
#[derive(Args, Debug)]
pub struct TransactionsArgs {
    #[command(subcommand)]
    command: TransactionsCommand,
    #[command(flatten)]
    connect: ConnectArgs,
    /// table or json.
    #[arg(long, value_enum, default_value_t, global = true)]
    output: OutputFormat,
}

#[derive(Subcommand, Debug)]
enum TransactionsCommand {
    /// List the transactional ids every coordinator knows.
    List {
        /// Only transactions in this state (Ongoing, CompleteCommit...); repeatable.
        #[arg(long = "state")]
        states: Vec<String>,
        /// Only this producer id; repeatable.
        #[arg(long = "producer-id")]
        producer_ids: Vec<i64>,
    },
    /// Describe one transactional id: state, producer, timeout and partitions.
    Describe {
        /// The transactional.id.
        #[arg(long = "transactional-id")]
        transactional_id: String,
    },
    /// Show the producers a partition's leader remembers.
    DescribeProducers {
        /// Topic.
        #[arg(long)]
        topic: String,
        /// Partition.
        #[arg(long)]
        partition: i32,
    },
}

/// Runs `gregor transactions`.
pub async fn run(args: TransactionsArgs) -> Result<()> {
    let admin = admin(&args.connect)?;
    match args.command {
        TransactionsCommand::List {
            states,
            producer_ids,
        } => {
            let listed = admin
                .list_transactions(&states, &producer_ids)
                .await
                .map_err(client_error)?;
            match args.output {
                OutputFormat::Json => print_json(&json!(
                    listed
                        .iter()
                        .map(|t| json!({
                            "transactional_id": t.transactional_id,
                            "coordinator": t.coordinator_id,
                            "producer_id": t.producer_id,
                            "state": t.state,
                        }))
                        .collect::<Vec<_>>()
                )),
                OutputFormat::Table => {
                    let rows: Vec<Vec<String>> = listed
                        .iter()
                        .map(|t| {
                            vec![
                                t.transactional_id.clone(),
                                t.coordinator_id.to_string(),
                                t.producer_id.to_string(),
                                t.state.clone(),
                            ]
                        })
                        .collect();
                    emit(&table(
                        &[
                            "TransactionalId",
                            "Coordinator",
                            "ProducerId",
                            "TransactionState",
                        ],
                        &rows,
                    ));
                }
            }
        }
        TransactionsCommand::Describe { transactional_id } => {
            let mut described = admin
                .describe_transactions(std::slice::from_ref(&transactional_id))
                .await
                .map_err(client_error)?;
            let d = match described.remove(&transactional_id) {
                Some(Ok(d)) => d,
                Some(Err(e)) => return Err(item_error(e, "")),
                None => bail!("UNKNOWN_SERVER_ERROR: no description of '{transactional_id}'"),
            };
            let partitions: Vec<String> =
                d.partitions.iter().map(TopicPartition::to_string).collect();
            match args.output {
                OutputFormat::Json => print_json(&json!({
                    "coordinator": d.coordinator_id,
                    "transactional_id": transactional_id,
                    "producer_id": d.producer_id,
                    "producer_epoch": d.producer_epoch,
                    "state": d.state,
                    "timeout_ms": d.timeout_ms,
                    "start_time_ms": d.start_time_ms,
                    "partitions": partitions,
                })),
                OutputFormat::Table => emit(&table(
                    &[
                        "CoordinatorId",
                        "TransactionalId",
                        "ProducerId",
                        "ProducerEpoch",
                        "TransactionState",
                        "TransactionTimeoutMs",
                        "CurrentTransactionStartTimeMs",
                        "TopicPartitions",
                    ],
                    &[vec![
                        d.coordinator_id.to_string(),
                        transactional_id,
                        d.producer_id.to_string(),
                        d.producer_epoch.to_string(),
                        d.state,
                        d.timeout_ms.to_string(),
                        d.start_time_ms.to_string(),
                        partitions.join(","),
                    ]],
                )),
            }
        }
        TransactionsCommand::DescribeProducers { topic, partition } => {
            let tp = TopicPartition::new(topic, partition);
            let mut found = admin
                .describe_producers(std::slice::from_ref(&tp))
                .await
                .map_err(client_error)?;
            let producers = found.remove(&tp).unwrap_or_default();
            match args.output {
                OutputFormat::Json => print_json(&json!(
                    producers
                        .iter()
                        .map(|p| json!({
                            "producer_id": p.producer_id,
                            "producer_epoch": p.producer_epoch,
                            "coordinator_epoch": p.coordinator_epoch,
                            "last_sequence": p.last_sequence,
                            "last_timestamp": p.last_timestamp,
                            "current_transaction_start_offset": p.current_txn_start_offset,
                        }))
                        .collect::<Vec<_>>()
                )),
                OutputFormat::Table => {
                    let rows: Vec<Vec<String>> = producers
                        .iter()
                        .map(|p| {
                            vec![
                                p.producer_id.to_string(),
                                p.producer_epoch.to_string(),
                                p.coordinator_epoch.to_string(),
                                p.last_sequence.to_string(),
                                p.last_timestamp.to_string(),
                                p.current_txn_start_offset
                                    .map_or_else(|| "None".to_string(), |o| o.to_string()),
                            ]
                        })
                        .collect();
                    emit(&table(
                        &[
                            "ProducerId",
                            "ProducerEpoch",
                            "LatestCoordinatorEpoch",
                            "LastSequence",
                            "LastTimestamp",
                            "CurrentTransactionStartOffset",
                        ],
                        &rows,
                    ));
                }
            }
        }
    }
    Ok(())
}

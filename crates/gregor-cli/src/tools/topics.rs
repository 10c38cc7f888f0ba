//! `gregor topics`: Kafka's `kafka-topics` — create, list, describe, alter (add partitions)
//! and delete topics, through the admin client.
//!
//! `describe` prints what `kafka-topics --describe` prints, fields separated by tabs, so eyes
//! and scripts used to Kafka read it the same way: a `Topic: … TopicId: … PartitionCount: …
//! ReplicationFactor: … Configs: k=v,…` line per topic, then a tab-indented `Topic: …
//! Partition: … Leader: … Replicas: … Isr: …` line per partition.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use gregor_client::ErrorCode;
use gregor_client::admin::{Admin, ConfigResource, ConfigSource, NewTopic, TopicDescription};
use gregor_protocol::ids;
use serde_json::json;

use super::ConnectArgs;

use super::cluster::admin;
use super::output::{OutputFormat, client_error, emit_line, item_error, print_json};

/// `gregor topics` arguments.
#[derive(Args, Debug)]
pub struct TopicsArgs {
    #[command(subcommand)]
    command: TopicsCommand,
}

#[derive(Subcommand, Debug)]
enum TopicsCommand {
    /// Create a topic.
    Create(CreateArgs),
    /// List topic names.
    List(ListArgs),
    /// Show partitions, leaders, replicas, in-sync replicas and config overrides.
    Describe(DescribeArgs),
    /// Add partitions to a topic.
    Alter(AlterArgs),
    /// Delete a topic.
    Delete(DeleteArgs),
}

#[derive(Args, Debug)]
struct CreateArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Topic name.
    #[arg(long)]
    topic: String,
    /// Partitions (default: the broker's num.partitions).
    #[arg(long)]
    partitions: Option<i32>,
    /// Replication factor (default: the broker's default.replication.factor).
    #[arg(long = "replication-factor")]
    replication_factor: Option<i16>,
    /// A topic config override, key=value; repeatable.
    #[arg(long = "config", value_name = "KEY=VALUE")]
    configs: Vec<String>,
    /// Succeed if the topic already exists.
    #[arg(long = "if-not-exists")]
    if_not_exists: bool,
}

#[derive(Args, Debug)]
struct ListArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Leave out internal topics (__consumer_offsets…).
    #[arg(long = "exclude-internal")]
    exclude_internal: bool,
    /// table (one name per line) or json.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

#[derive(Args, Debug)]
struct DescribeArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// The topic (default: every topic).
    #[arg(long)]
    topic: Option<String>,
    /// Leave out internal topics when describing every topic.
    #[arg(long = "exclude-internal")]
    exclude_internal: bool,
    /// table or json.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

#[derive(Args, Debug)]
struct AlterArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Topic name.
    #[arg(long)]
    topic: String,
    /// The new, larger partition count.
    #[arg(long)]
    partitions: i32,
}

#[derive(Args, Debug)]
struct DeleteArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Topic name.
    #[arg(long)]
    topic: String,
    /// Succeed if the topic does not exist.
    #[arg(long = "if-exists")]
    if_exists: bool,
}

/// Runs `gregor topics`.
pub async fn run(args: TopicsArgs) -> Result<()> {
    match args.command {
        TopicsCommand::Create(a) => create(a).await,
        TopicsCommand::List(a) => list(a).await,
        TopicsCommand::Describe(a) => describe(a).await,
        TopicsCommand::Alter(a) => alter(a).await,
        TopicsCommand::Delete(a) => delete(a).await,
    }
}

async fn create(args: CreateArgs) -> Result<()> {
    let admin = admin(&args.connect)?;
    let mut topic = NewTopic::new(
        &args.topic,
        args.partitions.unwrap_or(-1),
        args.replication_factor.unwrap_or(-1),
    );
    for pair in &args.configs {
        let (k, v) = super::key_value(pair, "--config")?;
        topic = topic.with_config(k, v.trim());
    }
    let mut results = admin
        .create_topics(&[topic], false)
        .await
        .map_err(client_error)?;
    let hint = format!(
        "topic '{}' already exists (add --if-not-exists to accept that)",
        args.topic
    );
    let expected = (
        ErrorCode::TOPIC_ALREADY_EXISTS,
        args.if_not_exists,
        hint.as_str(),
    );
    if topic_outcome(results.remove(&args.topic), &args.topic, expected)? {
        emit_line!("Created topic {}.", args.topic);
    }
    Ok(())
}

/// One topic's answer from a batch call: `true` if it succeeded, `false` if it failed with
/// the expected code and the user accepts that (`--if-exists`, `--if-not-exists`), else the
/// error (with the hint for the expected code).
fn topic_outcome<T>(
    answer: Option<std::result::Result<T, gregor_client::ClientError>>,
    topic: &str,
    (code, accepted, hint): (ErrorCode, bool, &str),
) -> Result<bool> {
    match answer {
        Some(Ok(_)) => Ok(true),
        Some(Err(e)) if e.code() == Some(code) && accepted => Ok(false),
        Some(Err(e)) => {
            let hint = if e.code() == Some(code) { hint } else { "" };
            Err(item_error(e, hint))
        }
        None => bail!("UNKNOWN_SERVER_ERROR: the broker did not answer for topic '{topic}'"),
    }
}

fn code_name(e: &gregor_client::ClientError) -> &'static str {
    e.code().map_or("", ErrorCode::name)
}

async fn list(args: ListArgs) -> Result<()> {
    let admin = admin(&args.connect)?;
    let topics: Vec<_> = admin
        .list_topics()
        .await
        .map_err(client_error)?
        .into_iter()
        .filter(|t| !(args.exclude_internal && t.internal))
        .collect();
    match args.output {
        OutputFormat::Json => print_json(&json!(topics
            .iter()
            .map(|t| json!({"name": t.name, "topic_id": ids::to_text(t.topic_id), "internal": t.internal}))
            .collect::<Vec<_>>())),
        OutputFormat::Table => {
            for t in topics {
                emit_line!("{}", t.name);
            }
        }
    }
    Ok(())
}

/// The topic-level overrides of each topic (what `kafka-topics --describe` lists as Configs).
async fn overrides(
    admin: &Admin,
    names: &[String],
) -> Result<BTreeMap<String, Vec<(String, String)>>> {
    let resources: Vec<ConfigResource> = names
        .iter()
        .map(|n| ConfigResource::Topic(n.clone()))
        .collect();
    let described = admin
        .describe_configs(&resources)
        .await
        .map_err(client_error)?;
    Ok(described
        .into_iter()
        .map(|(resource, entries)| {
            let overrides = entries
                .map(|entries| {
                    entries
                        .into_iter()
                        .filter(|e| e.source == ConfigSource::DynamicTopic)
                        .map(|e| (e.name, e.value.unwrap_or_default()))
                        .collect()
                })
                .unwrap_or_default();
            (resource.name().to_string(), overrides)
        })
        .collect())
}

fn ids(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

async fn describe(args: DescribeArgs) -> Result<()> {
    let admin = admin(&args.connect)?;
    let names: Vec<String> = match &args.topic {
        Some(t) => vec![t.clone()],
        None => admin
            .list_topics()
            .await
            .map_err(client_error)?
            .into_iter()
            .filter(|t| !(args.exclude_internal && t.internal))
            .map(|t| t.name)
            .collect(),
    };
    let described = admin.describe_topics(&names).await.map_err(client_error)?;
    let mut topics: Vec<TopicDescription> = Vec::new();
    for (name, result) in described {
        match result {
            Ok(t) => topics.push(t),
            // A topic deleted between listing and describing is simply gone.
            Err(_) if args.topic.is_none() => {}
            Err(e) => {
                return Err(item_error(e, &format!("topic '{name}' does not exist")));
            }
        }
    }
    let configs = overrides(&admin, &names).await?;
    let rf = |t: &TopicDescription| t.partitions.first().map_or(0, |p| p.replicas.len());
    match args.output {
        OutputFormat::Json => print_json(&json!(topics
            .iter()
            .map(|t| json!({
                "topic": t.name,
                "topic_id": ids::to_text(t.topic_id),
                "internal": t.internal,
                "partition_count": t.partitions.len(),
                "replication_factor": rf(t),
                "configs": configs.get(&t.name).map(|c| c.iter().cloned().collect::<BTreeMap<_, _>>()).unwrap_or_default(),
                "partitions": t.partitions.iter().map(|p| json!({
                    "partition": p.id,
                    "leader": p.leader,
                    "replicas": p.replicas,
                    "isr": p.isr,
                })).collect::<Vec<_>>(),
            }))
            .collect::<Vec<_>>())),
        OutputFormat::Table => {
            for t in &topics {
                let config = configs
                    .get(&t.name)
                    .map(|c| {
                        c.iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default();
                emit_line!(
                    "Topic: {}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {}",
                    t.name,
                    ids::to_text(t.topic_id),
                    t.partitions.len(),
                    rf(t),
                    config
                );
                for p in &t.partitions {
                    emit_line!(
                        "\tTopic: {}\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}",
                        t.name,
                        p.id,
                        if p.leader < 0 {
                            "none".to_string()
                        } else {
                            p.leader.to_string()
                        },
                        ids(&p.replicas),
                        ids(&p.isr)
                    );
                }
            }
        }
    }
    Ok(())
}

async fn alter(args: AlterArgs) -> Result<()> {
    let admin = admin(&args.connect)?;
    let counts = BTreeMap::from([(args.topic.clone(), args.partitions)]);
    let mut results = admin
        .create_partitions(&counts, false)
        .await
        .map_err(client_error)?;
    match results.remove(&args.topic) {
        Some(Ok(())) => {
            emit_line!(
                "Topic {} now has {} partitions.",
                args.topic,
                args.partitions
            );
            Ok(())
        }
        Some(Err(e)) => {
            let hint = match code_name(&e) {
                "UNKNOWN_TOPIC_OR_PARTITION" => format!("topic '{}' does not exist", args.topic),
                _ => String::new(),
            };
            Err(item_error(e, &hint))
        }
        None => bail!(
            "UNKNOWN_SERVER_ERROR: the broker did not answer for topic '{}'",
            args.topic
        ),
    }
}

async fn delete(args: DeleteArgs) -> Result<()> {
    let admin = admin(&args.connect)?;
    let mut results = admin
        .delete_topics(std::slice::from_ref(&args.topic))
        .await
        .map_err(client_error)?;
    let hint = format!(
        "topic '{}' does not exist (add --if-exists to accept that)",
        args.topic
    );
    let expected = (
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
        args.if_exists,
        hint.as_str(),
    );
    if topic_outcome(results.remove(&args.topic), &args.topic, expected)? {
        emit_line!("Deleted topic {}.", args.topic);
    }
    Ok(())
}

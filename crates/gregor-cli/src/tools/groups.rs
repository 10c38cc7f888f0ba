//! `gregor groups`: Kafka's `kafka-consumer-groups` — list groups, describe one (per
//! partition offsets and lag, members, or state), reset its committed offsets, delete it.
//!
//! Lag is the partition's log end offset minus the group's committed offset, as Kafka
//! computes it. Offsets can only be reset while the group has no members (Kafka's rule: a
//! running consumer would overwrite them at its next commit); the plan is printed without
//! changing anything unless `--execute` is given.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Result, bail};
use clap::{ArgGroup, Args, Subcommand};
use gregor_client::ErrorCode;
use gregor_client::admin::{
    Admin, GroupDescription, OffsetAndMetadata, OffsetSpec, TopicPartition,
};
use serde_json::json;

use super::ConnectArgs;

use super::cluster::admin;
use super::output::{OutputFormat, client_error, emit, emit_line, item_error, print_json, table};

/// `gregor groups` arguments.
#[derive(Args, Debug)]
pub struct GroupsArgs {
    #[command(subcommand)]
    command: GroupsCommand,
}

#[derive(Subcommand, Debug)]
enum GroupsCommand {
    /// List consumer groups.
    List(ListArgs),
    /// Show a group's offsets and lag (default), members or state.
    Describe(DescribeArgs),
    /// Move a group's committed offsets (dry run unless --execute).
    ResetOffsets(ResetArgs),
    /// Delete a group with no members, with its committed offsets.
    Delete(DeleteArgs),
    /// Delete a group's committed offsets of some topics or partitions (kafka-consumer-groups
    /// --delete-offsets): refused for topics the group's members still consume.
    DeleteOffsets(DeleteOffsetsArgs),
}

#[derive(Args, Debug)]
struct ListArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Only groups in this state (Stable, Empty, PreparingRebalance, CompletingRebalance…).
    #[arg(long)]
    state: Option<String>,
    /// table or json.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("view").args(["members", "offsets", "state"])))]
struct DescribeArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// The group id.
    #[arg(long)]
    group: String,
    /// One row per member: id, host, client id and assigned partitions.
    #[arg(long)]
    members: bool,
    /// One row per partition: committed offset, log end offset, lag, owner (the default).
    #[arg(long)]
    offsets: bool,
    /// The group's state, assignor and member count.
    #[arg(long)]
    state: bool,
    /// table or json.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("spec").required(true).args(
    ["to_earliest", "to_latest", "to_datetime", "to_offset", "shift_by"]
)))]
#[command(group(ArgGroup::new("mode").args(["dry_run", "execute"])))]
#[command(group(ArgGroup::new("scope").required(true).args(["topic", "all_topics"])))]
struct ResetArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// The group id.
    #[arg(long)]
    group: String,
    /// TOPIC or TOPIC:P1,P2 (default: all its partitions); repeatable.
    #[arg(long, value_name = "TOPIC[:PARTITIONS]")]
    topic: Vec<String>,
    /// Every topic the group has committed offsets for.
    #[arg(long = "all-topics")]
    all_topics: bool,
    /// To the log start.
    #[arg(long = "to-earliest")]
    to_earliest: bool,
    /// To the log end.
    #[arg(long = "to-latest")]
    to_latest: bool,
    /// To the first record at or after this time: YYYY-MM-DDTHH:mm:SS.sss, optionally
    /// followed by Z or ±HH:mm (without a zone, UTC).
    #[arg(long = "to-datetime", value_name = "DATETIME")]
    to_datetime: Option<String>,
    /// To this offset (kept within the log's start and end).
    #[arg(long = "to-offset", value_name = "OFFSET")]
    to_offset: Option<i64>,
    /// Move the committed offsets by N (negative: back), within the log.
    #[arg(long = "shift-by", value_name = "N", allow_hyphen_values = true)]
    shift_by: Option<i64>,
    /// Only print the plan (the default).
    #[arg(long = "dry-run")]
    dry_run: bool,
    /// Commit the new offsets.
    #[arg(long)]
    execute: bool,
    /// table or json.
    #[arg(long, value_enum, default_value_t)]
    output: OutputFormat,
}

#[derive(Args, Debug)]
struct DeleteArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// The group id.
    #[arg(long)]
    group: String,
}

#[derive(Args, Debug)]
struct DeleteOffsetsArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// The group id.
    #[arg(long)]
    group: String,
    /// TOPIC (every partition) or TOPIC:P1,P2 (repeatable).
    #[arg(long, required = true)]
    topic: Vec<String>,
}

/// Runs `gregor groups`.
pub async fn run(args: GroupsArgs) -> Result<()> {
    match args.command {
        GroupsCommand::List(a) => list(a).await,
        GroupsCommand::Describe(a) => describe(a).await,
        GroupsCommand::ResetOffsets(a) => reset(a).await,
        GroupsCommand::Delete(a) => delete(a).await,
        GroupsCommand::DeleteOffsets(a) => delete_offsets(a).await,
    }
}

async fn list(args: ListArgs) -> Result<()> {
    let admin = admin(&args.connect)?;
    let states: Vec<String> = args.state.iter().cloned().collect();
    let groups = admin.list_groups(&states).await.map_err(client_error)?;
    match args.output {
        OutputFormat::Json => print_json(&json!(
            groups
                .iter()
                .map(|g| json!({
                    "group": g.group_id,
                    "state": g.state,
                    "type": g.group_type,
                    "protocol_type": g.protocol_type,
                }))
                .collect::<Vec<_>>()
        )),
        OutputFormat::Table => {
            let dash = |s: &str| {
                if s.is_empty() {
                    "-".to_string()
                } else {
                    s.to_string()
                }
            };
            let rows: Vec<Vec<String>> = groups
                .iter()
                .map(|g| vec![g.group_id.clone(), dash(&g.state), dash(&g.group_type)])
                .collect();
            emit(&table(&["GROUP", "STATE", "TYPE"], &rows));
        }
    }
    Ok(())
}

/// The group's description; a group the coordinator does not know is `GROUP_ID_NOT_FOUND`
/// with the message kafka-consumer-groups gives.
async fn describe_group(admin: &Admin, group: &str) -> Result<GroupDescription> {
    let mut described = admin
        .describe_groups(&[group.to_string()])
        .await
        .map_err(client_error)?;
    match described.remove(group) {
        Some(Ok(d)) => Ok(d),
        Some(Err(e)) if e.code() == Some(ErrorCode::GROUP_ID_NOT_FOUND) => Err(item_error(
            e,
            &format!("consumer group '{group}' does not exist"),
        )),
        Some(Err(e)) => Err(item_error(e, "")),
        None => bail!("UNKNOWN_SERVER_ERROR: no description of group '{group}'"),
    }
}

/// Log end offsets of `partitions`.
async fn log_end_offsets(
    admin: &Admin,
    partitions: impl IntoIterator<Item = TopicPartition>,
    spec: OffsetSpec,
) -> Result<BTreeMap<TopicPartition, i64>> {
    let specs: BTreeMap<TopicPartition, OffsetSpec> =
        partitions.into_iter().map(|tp| (tp, spec)).collect();
    if specs.is_empty() {
        return Ok(BTreeMap::new());
    }
    Ok(admin
        .list_offsets(&specs)
        .await
        .map_err(client_error)?
        .into_iter()
        .map(|(tp, o)| (tp, o.offset))
        .collect())
}

/// A partition's offset from a ListOffsets answer; a broker that left the partition out is an
/// error, never a panic.
fn answered(
    offsets: &BTreeMap<TopicPartition, i64>,
    tp: &TopicPartition,
    which: &str,
) -> Result<i64> {
    offsets.get(tp).copied().ok_or_else(|| {
        anyhow::anyhow!("UNKNOWN_TOPIC_OR_PARTITION: the broker gave no {which} offset for {tp}")
    })
}

fn dash(v: Option<impl ToString>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

async fn describe(args: DescribeArgs) -> Result<()> {
    let admin = admin(&args.connect)?;
    let group = describe_group(&admin, &args.group).await?;
    if args.state {
        return print_state(&group, args.output);
    }
    if args.members {
        return print_members(&group, args.output);
    }
    let committed = admin
        .list_group_offsets(&args.group)
        .await
        .map_err(client_error)?;
    // Every partition the group has an offset for or a member owns.
    let mut owners: BTreeMap<TopicPartition, usize> = BTreeMap::new();
    for (i, m) in group.members.iter().enumerate() {
        for tp in &m.assignment {
            owners.insert(tp.clone(), i);
        }
    }
    let partitions: BTreeSet<TopicPartition> =
        committed.keys().chain(owners.keys()).cloned().collect();
    let ends = log_end_offsets(&admin, partitions.iter().cloned(), OffsetSpec::Latest).await?;
    if group.members.is_empty() && args.output == OutputFormat::Table {
        eprintln!("Consumer group '{}' has no active members.", args.group);
    }
    let rows: Vec<_> = partitions
        .iter()
        .map(|tp| {
            let current = committed.get(tp).map(|o: &OffsetAndMetadata| o.offset);
            let end = ends.get(tp).copied();
            let lag = match (current, end) {
                (Some(c), Some(e)) => Some((e - c).max(0)),
                _ => None,
            };
            let member = owners.get(tp).map(|&i| &group.members[i]);
            (tp, current, end, lag, member)
        })
        .collect();
    match args.output {
        OutputFormat::Json => print_json(&json!({
            "group": group.group_id,
            "state": group.state,
            "partitions": rows.iter().map(|(tp, current, end, lag, member)| json!({
                "topic": tp.topic,
                "partition": tp.partition,
                "current_offset": current,
                "log_end_offset": end,
                "lag": lag,
                "consumer_id": member.map(|m| &m.member_id),
                "host": member.map(|m| &m.host),
                "client_id": member.map(|m| &m.client_id),
            })).collect::<Vec<_>>(),
        })),
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = rows
                .iter()
                .map(|(tp, current, end, lag, member)| {
                    vec![
                        group.group_id.clone(),
                        tp.topic.clone(),
                        tp.partition.to_string(),
                        dash(*current),
                        dash(*end),
                        dash(*lag),
                        dash(member.map(|m| &m.member_id)),
                        dash(member.map(|m| &m.host)),
                        dash(member.map(|m| &m.client_id)),
                    ]
                })
                .collect();
            emit(&table(
                &[
                    "GROUP",
                    "TOPIC",
                    "PARTITION",
                    "CURRENT-OFFSET",
                    "LOG-END-OFFSET",
                    "LAG",
                    "CONSUMER-ID",
                    "HOST",
                    "CLIENT-ID",
                ],
                &rows,
            ));
        }
    }
    Ok(())
}

fn assignment_text(assignment: &[TopicPartition]) -> String {
    let mut by_topic: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for tp in assignment {
        by_topic
            .entry(&tp.topic)
            .or_default()
            .push(tp.partition.to_string());
    }
    if by_topic.is_empty() {
        return "-".to_string();
    }
    by_topic
        .into_iter()
        .map(|(t, ps)| format!("{t}({})", ps.join(",")))
        .collect::<Vec<_>>()
        .join(" ")
}

fn print_members(group: &GroupDescription, output: OutputFormat) -> Result<()> {
    match output {
        OutputFormat::Json => print_json(&json!({
            "group": group.group_id,
            "state": group.state,
            "members": group.members.iter().map(|m| json!({
                "consumer_id": m.member_id,
                "group_instance_id": m.group_instance_id,
                "host": m.host,
                "client_id": m.client_id,
                "assignment": m.assignment.iter().map(|tp| json!({"topic": tp.topic, "partition": tp.partition})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })),
        OutputFormat::Table => {
            if group.members.is_empty() {
                eprintln!("Consumer group '{}' has no active members.", group.group_id);
            }
            let rows: Vec<Vec<String>> = group
                .members
                .iter()
                .map(|m| {
                    vec![
                        group.group_id.clone(),
                        m.member_id.clone(),
                        m.host.clone(),
                        m.client_id.clone(),
                        m.assignment.len().to_string(),
                        assignment_text(&m.assignment),
                    ]
                })
                .collect();
            emit(&table(
                &[
                    "GROUP",
                    "CONSUMER-ID",
                    "HOST",
                    "CLIENT-ID",
                    "#PARTITIONS",
                    "ASSIGNMENT",
                ],
                &rows,
            ));
        }
    }
    Ok(())
}

fn print_state(group: &GroupDescription, output: OutputFormat) -> Result<()> {
    match output {
        OutputFormat::Json => print_json(&json!({
            "group": group.group_id,
            "state": group.state,
            "type": group.group_type,
            "protocol_type": group.protocol_type,
            "assignment_strategy": group.protocol,
            "members": group.members.len(),
        })),
        OutputFormat::Table => emit(&table(
            &["GROUP", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS"],
            &[vec![
                group.group_id.clone(),
                if group.protocol.is_empty() {
                    "-".to_string()
                } else {
                    group.protocol.clone()
                },
                group.state.clone(),
                group.members.len().to_string(),
            ]],
        )),
    }
    Ok(())
}

/// The partitions `--topic TOPIC` (all of its partitions) and `--topic TOPIC:0,1` name.
async fn resolve_partitions(admin: &Admin, specs: &[String]) -> Result<BTreeSet<TopicPartition>> {
    let mut partitions: BTreeSet<TopicPartition> = BTreeSet::new();
    let mut whole_topics = Vec::new();
    for spec in specs {
        let (topic, chosen) = parse_topic_spec(spec)?;
        match chosen {
            Some(ps) => partitions.extend(ps.into_iter().map(|p| TopicPartition::new(&topic, p))),
            None => whole_topics.push(topic),
        }
    }
    if !whole_topics.is_empty() {
        let described = admin
            .describe_topics(&whole_topics)
            .await
            .map_err(client_error)?;
        for (name, result) in described {
            let topic =
                result.map_err(|e| item_error(e, &format!("topic '{name}' does not exist")))?;
            partitions.extend(
                topic
                    .partitions
                    .iter()
                    .map(|p| TopicPartition::new(&name, p.id)),
            );
        }
    }
    Ok(partitions)
}

/// `TOPIC` or `TOPIC:0,1`.
fn parse_topic_spec(spec: &str) -> Result<(String, Option<Vec<i32>>)> {
    match spec.rsplit_once(':') {
        Some((topic, partitions)) if !topic.is_empty() => {
            let partitions = partitions
                .split(',')
                .map(|p| p.trim().parse::<i32>())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|_| {
                    anyhow::anyhow!(
                        "INVALID_REQUEST: --topic {spec:?}: expected TOPIC or TOPIC:P1,P2 with partition numbers"
                    )
                })?;
            Ok((topic.to_string(), Some(partitions)))
        }
        _ if spec.is_empty() => bail!("INVALID_REQUEST: --topic needs a topic name"),
        _ => Ok((spec.to_string(), None)),
    }
}

/// Milliseconds since the epoch of `YYYY-MM-DDTHH:mm:SS[.sss][Z|±HH:mm]` (UTC without zone).
fn parse_datetime(text: &str) -> Result<i64> {
    let bad = || {
        anyhow::anyhow!(
            "INVALID_REQUEST: --to-datetime {text:?}: expected YYYY-MM-DDTHH:mm:SS.sss, \
             optionally followed by Z or +HH:mm"
        )
    };
    let (datetime, offset_minutes) = if let Some(rest) = text.strip_suffix('Z') {
        (rest, 0)
    } else if text.len() > 6
        && matches!(text.as_bytes()[text.len() - 6], b'+' | b'-')
        && text.as_bytes()[text.len() - 3] == b':'
    {
        let (dt, zone) = text.split_at(text.len() - 6);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let h: i64 = zone[1..3].parse().map_err(|_| bad())?;
        let m: i64 = zone[4..6].parse().map_err(|_| bad())?;
        (dt, sign * (h * 60 + m))
    } else {
        (text, 0)
    };
    let (date, time) = datetime.split_once('T').ok_or_else(bad)?;
    let d: Vec<&str> = date.split('-').collect();
    let (time, millis) = match time.split_once('.') {
        Some((t, ms)) => (t, ms),
        None => (time, "0"),
    };
    let t: Vec<&str> = time.split(':').collect();
    if d.len() != 3 || t.len() != 3 || millis.is_empty() || millis.len() > 3 {
        return Err(bad());
    }
    let num = |s: &str| s.parse::<i64>().map_err(|_| bad());
    let (year, month, day) = (num(d[0])?, num(d[1])?, num(d[2])?);
    let (hour, minute, second) = (num(t[0])?, num(t[1])?, num(t[2])?);
    let millis = num(&format!("{millis:0<3}"))?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(bad());
    }
    // Days from 1970-01-01 to the civil date (proleptic Gregorian).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Ok(seconds * 1000 + millis)
}

async fn reset(args: ResetArgs) -> Result<()> {
    let admin = admin(&args.connect)?;
    // Kafka's rule: only an inactive group's offsets may be reset.
    let mut described = admin
        .describe_groups(std::slice::from_ref(&args.group))
        .await
        .map_err(client_error)?;
    match described.remove(&args.group) {
        Some(Ok(g)) if !g.members.is_empty() || !matches!(g.state.as_str(), "Empty" | "Dead") => {
            bail!(
                "NON_EMPTY_GROUP: offsets of group '{}' can only be reset while it has no members, \
                 but it is {} with {} member(s); stop its consumers first",
                args.group,
                g.state,
                g.members.len()
            );
        }
        Some(Err(e)) if e.code() != Some(ErrorCode::GROUP_ID_NOT_FOUND) => {
            return Err(item_error(e, ""));
        }
        _ => {}
    }
    let committed = admin
        .list_group_offsets(&args.group)
        .await
        .map_err(client_error)?;

    // The partitions to reset.
    let mut partitions: BTreeSet<TopicPartition> = BTreeSet::new();
    if args.all_topics {
        partitions.extend(committed.keys().cloned());
    }
    partitions.extend(resolve_partitions(&admin, &args.topic).await?);
    if partitions.is_empty() {
        bail!(
            "INVALID_REQUEST: no partitions to reset (group '{}' has no committed offsets)",
            args.group
        );
    }

    let earliest =
        log_end_offsets(&admin, partitions.iter().cloned(), OffsetSpec::Earliest).await?;
    let latest = log_end_offsets(&admin, partitions.iter().cloned(), OffsetSpec::Latest).await?;
    let earliest_of = |tp: &TopicPartition| answered(&earliest, tp, "earliest");
    let latest_of = |tp: &TopicPartition| answered(&latest, tp, "latest");
    let clamp = |tp: &TopicPartition, o: i64| -> Result<i64> {
        let (low, high) = (earliest_of(tp)?, latest_of(tp)?);
        Ok(o.clamp(low, high.max(low)))
    };
    let mut plan: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    if let Some(text) = &args.to_datetime {
        let ts = parse_datetime(text)?;
        let found = log_end_offsets(
            &admin,
            partitions.iter().cloned(),
            OffsetSpec::Timestamp(ts),
        )
        .await?;
        for tp in &partitions {
            // No record that recent: the log end, as Kafka does.
            let o = found
                .get(tp)
                .copied()
                .filter(|o| *o >= 0)
                .map_or_else(|| latest_of(tp), Ok)?;
            plan.insert(tp.clone(), o);
        }
    } else {
        for tp in &partitions {
            let o = if args.to_earliest {
                earliest_of(tp)?
            } else if args.to_latest {
                latest_of(tp)?
            } else if let Some(o) = args.to_offset {
                clamp(tp, o)?
            } else if let Some(n) = args.shift_by {
                let current = committed.get(tp).map(|o| o.offset).ok_or_else(|| {
                    anyhow::anyhow!(
                        "INVALID_REQUEST: cannot shift partition {tp}: group '{}' has no committed \
                         offset there; use --to-earliest, --to-latest or --to-offset",
                        args.group
                    )
                })?;
                clamp(tp, current.saturating_add(n))?
            } else {
                unreachable!("clap requires one reset spec")
            };
            plan.insert(tp.clone(), o);
        }
    }

    if args.execute {
        admin
            .alter_group_offsets(&args.group, &plan)
            .await
            .map_err(|e| match e.code().map(ErrorCode::name) {
                Some("UNKNOWN_MEMBER_ID" | "ILLEGAL_GENERATION" | "REBALANCE_IN_PROGRESS") => {
                    item_error(
                        e,
                        &format!(
                            "group '{}' gained members while resetting; stop its consumers and retry",
                            args.group
                        ),
                    )
                }
                _ => client_error(e),
            })?;
    }
    match args.output {
        OutputFormat::Json => print_json(&json!({
            "group": args.group,
            "executed": args.execute,
            "partitions": plan.iter().map(|(tp, o)| json!({
                "topic": tp.topic,
                "partition": tp.partition,
                "new_offset": o,
            })).collect::<Vec<_>>(),
        })),
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = plan
                .iter()
                .map(|(tp, o)| {
                    vec![
                        args.group.clone(),
                        tp.topic.clone(),
                        tp.partition.to_string(),
                        o.to_string(),
                    ]
                })
                .collect();
            emit(&table(
                &["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"],
                &rows,
            ));
            if !args.execute {
                eprintln!("Dry run: nothing changed; add --execute to commit these offsets.");
            }
        }
    }
    Ok(())
}

async fn delete(args: DeleteArgs) -> Result<()> {
    let admin = admin(&args.connect)?;
    let mut results = admin
        .delete_groups(std::slice::from_ref(&args.group))
        .await
        .map_err(client_error)?;
    match results.remove(&args.group) {
        Some(Ok(())) => {
            emit_line!(
                "Deletion of requested consumer groups ('{}') was successful.",
                args.group
            );
            Ok(())
        }
        Some(Err(e)) => {
            let hint = match e.code().map(ErrorCode::name) {
                Some("NON_EMPTY_GROUP") => format!(
                    "group '{}' still has members; stop its consumers before deleting it",
                    args.group
                ),
                Some("GROUP_ID_NOT_FOUND") => {
                    format!("consumer group '{}' does not exist", args.group)
                }
                _ => String::new(),
            };
            Err(item_error(e, &hint))
        }
        None => bail!("UNKNOWN_SERVER_ERROR: no answer for group '{}'", args.group),
    }
}

async fn delete_offsets(args: DeleteOffsetsArgs) -> Result<()> {
    let admin = admin(&args.connect)?;
    let partitions: Vec<TopicPartition> = resolve_partitions(&admin, &args.topic)
        .await?
        .into_iter()
        .collect();
    admin
        .delete_group_offsets(&args.group, &partitions)
        .await
        .map_err(|e| {
            let hint = match e.code() {
                Some(ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC) => format!(
                    "members of group '{}' still consume the topic; stop them or change their \
                     subscription first",
                    args.group
                ),
                Some(ErrorCode::GROUP_ID_NOT_FOUND) => {
                    format!("consumer group '{}' does not exist", args.group)
                }
                _ => String::new(),
            };
            item_error(e, &hint)
        })?;
    emit_line!(
        "Request succeeded for deleting offsets of {} partition(s) from group '{}'.",
        partitions.len(),
        args.group
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_parse_like_kafka_consumer_groups() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00.000").unwrap(), 0);
        assert_eq!(
            parse_datetime("2024-01-01T00:00:00.000").unwrap(),
            1_704_067_200_000
        );
        assert_eq!(
            parse_datetime("2024-02-29T12:34:56.789Z").unwrap(),
            1_709_210_096_789
        );
        assert_eq!(
            parse_datetime("2024-01-01T01:00:00.000+01:00").unwrap(),
            1_704_067_200_000
        );
        assert_eq!(
            parse_datetime("2023-12-31T23:00:00-01:00").unwrap(),
            1_704_067_200_000
        );
        for bad in [
            "2024-01-01",
            "2024-13-01T00:00:00",
            "yesterday",
            "2024-01-01T00:00:00.1234",
        ] {
            assert!(parse_datetime(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn topic_specs() {
        assert_eq!(parse_topic_spec("t").unwrap(), ("t".to_string(), None));
        assert_eq!(
            parse_topic_spec("t:0,2").unwrap(),
            ("t".to_string(), Some(vec![0, 2]))
        );
        assert!(parse_topic_spec("t:x").is_err());
    }
}

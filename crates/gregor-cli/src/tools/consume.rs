//! `gregor consume`: Kafka's `kafka-console-consumer`. Prints records of one topic, from the
//! end by default (`--from-beginning`, `--offset`, `--timestamp` move the start), alone (all
//! partitions assigned, no group) or as a member of `--group` (partitions shared with the
//! group's other members, offsets committed).
//!
//! Formats (`--formatter`):
//! * `value` (default): the value, as kafka-console-consumer prints it (`null` for none);
//! * `key-value`: key, `--key-separator` (a tab by default), value;
//!
//!   both take kafka-console-consumer's `--property print.timestamp=true` (and
//!   `print.partition`, `print.offset`, `print.headers`, `print.key`, `print.value`,
//!   `key.separator`, `line.separator`, `headers.separator`, `headers.key.separator`,
//!   `null.literal`), printing fields in its order;
//! * `json`: one JSON object per line with `topic`, `partition`, `offset`, `timestamp`,
//!   `timestamp_type` (`CreateTime` or `LogAppendTime`), `key`, `value` and `headers` (a list of `{"key", "value"}` in record order, duplicates kept).
//!   Keys and values that are valid UTF-8 are JSON strings and null ones are `null`; any other
//!   bytes are written in standard base64 and flagged by a sibling `"key_encoding": "base64"` /
//!   `"value_encoding": "base64"` (`"encoding": "base64"` inside a header), so the output stays
//!   lossless and a plain-text record needs no decoding.
//!
//! The tool ends after `--max-messages` records, after `--timeout-ms` without a new record,
//! or on Ctrl-C; it then prints `Processed a total of N messages` on stderr, commits (with a
//! group) and leaves the group.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use bytes::Bytes;
use clap::{Args, ValueEnum};
use gregor_client::config::ConsumerConfig;
use gregor_client::consumer::{Consumer, ConsumerRecord};
use serde_json::{Map, Value, json};

use super::ConnectArgs;

/// `--formatter`.
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Formatter {
    /// The value only.
    #[default]
    Value,
    /// Key, separator, value.
    KeyValue,
    /// One JSON object per record.
    Json,
}

/// `gregor consume` arguments.
#[derive(Args, Debug)]
pub struct ConsumeArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Topic to read.
    #[arg(long)]
    topic: String,
    /// Start at the log start when there is no committed offset (auto.offset.reset=earliest).
    #[arg(long = "from-beginning")]
    from_beginning: bool,
    /// Read only this partition (not with --group).
    #[arg(long)]
    partition: Option<i32>,
    /// Where to start in --partition: an offset, earliest or latest.
    #[arg(long, value_name = "N|earliest|latest")]
    offset: Option<String>,
    /// Start at the first record with a timestamp (ms since the epoch) at or after this (not
    /// with --group).
    #[arg(long, value_name = "MS")]
    timestamp: Option<i64>,
    /// Consume as a member of this consumer group (committing offsets).
    #[arg(long)]
    group: Option<String>,
    /// Exit after printing this many records.
    #[arg(long = "max-messages", value_name = "N")]
    max_messages: Option<u64>,
    /// Exit when no record arrived for this long.
    #[arg(long = "timeout-ms", value_name = "MS")]
    timeout_ms: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Formatter::Value)]
    formatter: Formatter,
    /// Between key and value with --formatter key-value (same as --property key.separator).
    #[arg(long = "key-separator", value_name = "SEP")]
    key_separator: Option<String>,
    /// kafka-console-consumer's formatter settings (repeatable): print.key, print.value,
    /// print.timestamp, print.partition, print.offset, print.headers (true/false),
    /// key.separator, line.separator, headers.separator, headers.key.separator, null.literal.
    #[arg(long = "property", value_name = "KEY=VALUE")]
    property: Vec<String>,
    /// Any consumer setting under its Kafka name (repeatable), e.g. isolation.level=read_committed.
    #[arg(long = "consumer-property", value_name = "KEY=VALUE")]
    consumer_property: Vec<String>,
}

/// kafka-console-consumer's `DefaultMessageFormatter` settings, for the value and key-value
/// formatters: fields in Kafka's order (timestamp, partition, offset, headers, key, value),
/// `key.separator` between them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineFormat {
    print_timestamp: bool,
    print_partition: bool,
    print_offset: bool,
    print_headers: bool,
    print_key: bool,
    print_value: bool,
    key_separator: String,
    line_separator: String,
    headers_separator: String,
    headers_key_separator: String,
    null_literal: String,
}

impl LineFormat {
    fn from_args(args: &ConsumeArgs) -> Result<LineFormat> {
        let mut format = LineFormat {
            print_timestamp: false,
            print_partition: false,
            print_offset: false,
            print_headers: false,
            print_key: args.formatter == Formatter::KeyValue,
            print_value: true,
            key_separator: "\t".into(),
            line_separator: "\n".into(),
            headers_separator: ",".into(),
            headers_key_separator: ":".into(),
            null_literal: "null".into(),
        };
        for pair in &args.property {
            let (key, value) = super::key_value(pair, "--property")?;
            let flag = || match value.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(anyhow!(
                    "--property {key}: expected true or false, got {value:?}"
                )),
            };
            match key.trim() {
                "print.timestamp" => format.print_timestamp = flag()?,
                "print.partition" => format.print_partition = flag()?,
                "print.offset" => format.print_offset = flag()?,
                "print.headers" => format.print_headers = flag()?,
                "print.key" => format.print_key = flag()?,
                "print.value" => format.print_value = flag()?,
                "key.separator" => format.key_separator = value.to_string(),
                "line.separator" => format.line_separator = value.to_string(),
                "headers.separator" => format.headers_separator = value.to_string(),
                "headers.key.separator" => format.headers_key_separator = value.to_string(),
                "null.literal" => format.null_literal = value.to_string(),
                other => bail!(
                    "--property {other} is unknown; expected print.key, print.value, \
                     print.timestamp, print.partition, print.offset, print.headers, \
                     key.separator, line.separator, headers.separator, \
                     headers.key.separator or null.literal"
                ),
            }
        }
        if let Some(separator) = &args.key_separator {
            format.key_separator = separator.clone();
        }
        Ok(format)
    }

    fn text(&self, bytes: &Option<Bytes>) -> String {
        match bytes {
            Some(b) => String::from_utf8_lossy(b).into_owned(),
            None => self.null_literal.clone(),
        }
    }

    /// One record, with its line separator.
    pub fn format(&self, record: &ConsumerRecord) -> String {
        let mut fields = Vec::new();
        if self.print_timestamp {
            fields.push(format!("{:?}:{}", record.timestamp_type, record.timestamp));
        }
        if self.print_partition {
            fields.push(format!("Partition:{}", record.partition));
        }
        if self.print_offset {
            fields.push(format!("Offset:{}", record.offset));
        }
        if self.print_headers {
            fields.push(if record.headers.is_empty() {
                "NO_HEADERS".to_string()
            } else {
                record
                    .headers
                    .iter()
                    .map(|(k, v)| format!("{k}{}{}", self.headers_key_separator, self.text(v)))
                    .collect::<Vec<_>>()
                    .join(&self.headers_separator)
            });
        }
        if self.print_key {
            fields.push(self.text(&record.key));
        }
        if self.print_value {
            fields.push(self.text(&record.value));
        }
        let mut line = fields.join(&self.key_separator);
        line.push_str(&self.line_separator);
        line
    }
}

/// Where `--offset` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    Earliest,
    Latest,
    At(i64),
}

fn parse_offset(text: &str) -> Result<Start> {
    match text {
        "earliest" | "beginning" => Ok(Start::Earliest),
        "latest" | "end" => Ok(Start::Latest),
        n => match n.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(Start::At(n)),
            _ => bail!("--offset must be a non-negative number, earliest or latest, not {n:?}"),
        },
    }
}

/// Checks the option combinations kafka-console-consumer refuses.
fn check(args: &ConsumeArgs) -> Result<Option<Start>> {
    let start = args.offset.as_deref().map(parse_offset).transpose()?;
    if start.is_some() && args.partition.is_none() {
        bail!("--offset needs --partition (which partition the offset is in)");
    }
    if args.group.is_some() && (args.partition.is_some() || args.timestamp.is_some()) {
        bail!(
            "--partition and --timestamp cannot be combined with --group (the group assigns partitions)"
        );
    }
    if args.from_beginning && (start.is_some() || args.timestamp.is_some()) {
        bail!("--from-beginning cannot be combined with --offset or --timestamp");
    }
    if start.is_some() && args.timestamp.is_some() {
        bail!("--offset and --timestamp cannot be combined");
    }
    if args.partition.is_some_and(|p| p < 0) {
        bail!("--partition must not be negative");
    }
    if args.max_messages == Some(0) {
        bail!("--max-messages must be at least 1");
    }
    Ok(start)
}

/// Runs `gregor consume`.
pub async fn run(args: ConsumeArgs) -> Result<()> {
    let start = check(&args)?;
    LineFormat::from_args(&args)?; // refuse bad --property before connecting
    let mut properties = args.connect.properties()?;
    properties.push((
        "auto.offset.reset".into(),
        if args.from_beginning {
            "earliest"
        } else {
            "latest"
        }
        .into(),
    ));
    if let Some(group) = &args.group {
        properties.push(("group.id".into(), group.clone()));
    }
    super::merge_properties(
        &mut properties,
        &args.consumer_property,
        "--consumer-property",
    )?;
    let config =
        ConsumerConfig::from_properties(properties).map_err(super::output::client_error)?;
    let mut consumer = Consumer::new(config).map_err(super::output::client_error)?;
    let topic = consumer
        .cluster()
        .topic(&args.topic)
        .await
        .map_err(super::output::client_error)?;
    if let Some(p) = args.partition
        && !topic.partitions.iter().any(|info| info.id == p)
    {
        bail!(
            "UNKNOWN_TOPIC_OR_PARTITION: topic {} has no partition {p} (it has {})",
            args.topic,
            topic.partitions.len()
        );
    }
    if args.group.is_some() {
        consumer
            .subscribe(vec![args.topic.clone()], None)
            .await
            .map_err(super::output::client_error)?;
    } else {
        let partitions: Vec<(String, i32)> = match args.partition {
            Some(p) => vec![(args.topic.clone(), p)],
            None => topic
                .partitions
                .iter()
                .map(|p| (args.topic.clone(), p.id))
                .collect(),
        };
        consumer
            .assign(partitions)
            .await
            .map_err(super::output::client_error)?;
        match (start, args.timestamp) {
            (Some(Start::Earliest), _) => consumer.seek_to_beginning(&[]).await,
            (Some(Start::Latest), _) => consumer.seek_to_end(&[]).await,
            (Some(Start::At(n)), _) => consumer.seek(&args.topic, args.partition.unwrap_or(0), n),
            (None, Some(ms)) => consumer.seek_to_timestamp(&[], ms).await,
            (None, None) => Ok(()),
        }
        .map_err(super::output::client_error)?;
    }

    let result = consume(&mut consumer, &args).await;
    let closed = consumer.close().await;
    let count = result?;
    eprintln!("Processed a total of {count} messages");
    closed.map_err(super::output::client_error)
}

/// The poll-and-print loop; returns how many records were printed.
async fn consume(consumer: &mut Consumer, args: &ConsumeArgs) -> Result<u64> {
    let stdout = std::io::stdout();
    // Records going to a file or pipe, a person at the terminal: show how many are left.
    let bar = args
        .max_messages
        .filter(|_| !std::io::IsTerminal::is_terminal(&stdout))
        .and_then(|max| super::output::progress(max, false));
    let result = print_records(consumer, args, &stdout, bar.as_ref()).await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    result
}

/// Polls and prints until `--max-messages`, `--timeout-ms` or Ctrl-C.
async fn print_records(
    consumer: &mut Consumer,
    args: &ConsumeArgs,
    stdout: &std::io::Stdout,
    bar: Option<&indicatif::ProgressBar>,
) -> Result<u64> {
    let line_format = LineFormat::from_args(args)?;
    let idle_limit = args.timeout_ms.map(Duration::from_millis);
    let mut last_record = Instant::now();
    let mut count = 0u64;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let mut wait = Duration::from_millis(500);
        if let Some(limit) = idle_limit {
            let left = limit.saturating_sub(last_record.elapsed());
            if left.is_zero() {
                return Ok(count);
            }
            wait = wait.min(left);
        }
        let records = tokio::select! {
            records = consumer.poll(wait) => records.map_err(super::output::client_error)?,
            _ = &mut ctrl_c => return Ok(count),
        };
        if records.is_empty() {
            continue;
        }
        last_record = Instant::now();
        let mut out = std::io::BufWriter::new(stdout.lock());
        for record in &records {
            let line = match args.formatter {
                Formatter::Json => format!("{}\n", record_json(record)),
                _ => line_format.format(record),
            };
            if out.write_all(line.as_bytes()).is_err() {
                // The reader went away (`| head`): stop quietly.
                return Ok(count);
            }
            count += 1;
            if let Some(bar) = bar {
                bar.inc(1);
            }
            if args.max_messages.is_some_and(|max| count >= max) {
                let _ = out.flush();
                // Commit where the printed records end, not past what poll returned beyond.
                if args.group.is_some() {
                    consumer
                        .seek(&record.topic, record.partition, record.offset + 1)
                        .map_err(super::output::client_error)?;
                    rewind_others(consumer, &records, record)?;
                }
                return Ok(count);
            }
        }
        if out.flush().is_err() {
            return Ok(count);
        }
    }
}

/// After stopping at `last`, moves every other partition back to its first unprinted record,
/// so the group's commit on close covers exactly what was printed.
fn rewind_others(
    consumer: &mut Consumer,
    records: &[ConsumerRecord],
    last: &ConsumerRecord,
) -> Result<()> {
    let stop = records
        .iter()
        .position(|r| std::ptr::eq(r, last))
        .unwrap_or(records.len());
    let mut first_unprinted: Vec<(&str, i32, i64)> = Vec::new();
    for r in &records[stop + 1..] {
        if (r.topic.as_str(), r.partition) == (last.topic.as_str(), last.partition) {
            continue;
        }
        if !first_unprinted
            .iter()
            .any(|(t, p, _)| (*t, *p) == (r.topic.as_str(), r.partition))
        {
            first_unprinted.push((&r.topic, r.partition, r.offset));
        }
    }
    for (t, p, o) in first_unprinted {
        consumer
            .seek(t, p, o)
            .map_err(super::output::client_error)?;
    }
    Ok(())
}

/// Puts `bytes` under `field`: a string if UTF-8, else base64 with `<encoding_field>` set.
fn put_bytes(
    object: &mut Map<String, Value>,
    field: &str,
    encoding_field: &str,
    bytes: &Option<Bytes>,
) {
    match bytes {
        None => {
            object.insert(field.into(), Value::Null);
        }
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => {
                object.insert(field.into(), Value::String(s.to_string()));
            }
            Err(_) => {
                object.insert(field.into(), Value::String(base64(b)));
                object.insert(encoding_field.into(), Value::String("base64".into()));
            }
        },
    }
}

/// The JSON object `--formatter json` prints.
pub fn record_json(record: &ConsumerRecord) -> Value {
    let mut object = Map::new();
    object.insert("topic".into(), json!(record.topic));
    object.insert("partition".into(), json!(record.partition));
    object.insert("offset".into(), json!(record.offset));
    object.insert("timestamp".into(), json!(record.timestamp));
    object.insert(
        "timestamp_type".into(),
        json!(format!("{:?}", record.timestamp_type)),
    );
    put_bytes(&mut object, "key", "key_encoding", &record.key);
    put_bytes(&mut object, "value", "value_encoding", &record.value);
    let headers: Vec<Value> = record
        .headers
        .iter()
        .map(|(k, v)| {
            let mut header = Map::new();
            header.insert("key".into(), json!(k));
            put_bytes(&mut header, "value", "encoding", v);
            Value::Object(header)
        })
        .collect();
    object.insert("headers".into(), Value::Array(headers));
    Value::Object(object)
}

/// Standard base64 (RFC 4648, padded).
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn json_lines_keep_nulls_binary_and_duplicate_headers() {
        let record = ConsumerRecord {
            topic: "t".into(),
            partition: 1,
            offset: 7,
            timestamp: 42,
            timestamp_type: Default::default(),
            key: None,
            value: Some(Bytes::from_static(&[0xff, 0x00])),
            headers: vec![
                ("h".into(), Some(Bytes::from_static(b"a"))),
                ("h".into(), None),
            ],
        };
        let v = record_json(&record);
        assert_eq!(v["key"], Value::Null);
        assert_eq!(v["value"], "/wA=");
        assert_eq!(v["value_encoding"], "base64");
        assert_eq!(v["headers"][0], json!({"key": "h", "value": "a"}));
        assert_eq!(v["headers"][1], json!({"key": "h", "value": null}));
        let format = |extra: &[&str]| {
            use clap::Parser;
            #[derive(Parser)]
            struct Cli {
                #[command(flatten)]
                args: ConsumeArgs,
            }
            let mut argv = vec!["gregor", "--topic", "t"];
            argv.extend_from_slice(extra);
            LineFormat::from_args(&Cli::parse_from(argv).args).map(|f| f.format(&record))
        };
        assert_eq!(
            format(&["--formatter", "key-value", "--key-separator", ":"]).unwrap(),
            "null:\u{fffd}\u{0}\n"
        );
        let all = [
            "--property",
            "print.timestamp=true",
            "--property",
            "print.partition=true",
            "--property",
            "print.offset=true",
            "--property",
            "print.headers=true",
            "--property",
            "print.value=false",
            "--property",
            "key.separator=|",
            "--property",
            "null.literal=-",
        ];
        assert_eq!(
            format(&all).unwrap(),
            "CreateTime:42|Partition:1|Offset:7|h:a,h:-\n"
        );
        assert!(format(&["--property", "print.everything=true"]).is_err());
    }

    #[test]
    fn refuses_kafka_console_consumer_conflicts() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: ConsumeArgs,
        }
        let parse = |extra: &[&str]| {
            let mut argv = vec!["gregor", "--topic", "t"];
            argv.extend_from_slice(extra);
            check(&Cli::parse_from(argv).args)
        };
        assert!(parse(&["--offset", "5"]).is_err());
        assert!(parse(&["--offset", "x", "--partition", "0"]).is_err());
        assert!(parse(&["--group", "g", "--partition", "0"]).is_err());
        assert!(parse(&["--from-beginning", "--timestamp", "1"]).is_err());
        assert_eq!(
            parse(&["--offset", "earliest", "--partition", "0"]).unwrap(),
            Some(Start::Earliest)
        );
    }
}

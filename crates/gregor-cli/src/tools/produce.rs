//! `gregor produce`: Kafka's `kafka-console-producer`. One record per line from stdin or a file;
//! keys when `parse.key` is on (`--key-separator` turns it on), headers from `--header` on
//! every record and, with `parse.headers`, from each line; producer settings under their Kafka
//! names with `--producer-property`.
//!
//! Lines are read on their own thread so a slow pipe never stalls the producer; at most
//! [`WINDOW`] records are unacknowledged at a time. Any record that cannot be delivered ends
//! the tool with an `error:` line and a non-zero exit code.

use std::collections::VecDeque;
use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Args;
use gregor_client::config::ProducerConfig;
use gregor_client::producer::{Producer, ProducerRecord};
use gregor_client::{ClientError, producer::DeliveryFuture};

use super::ConnectArgs;

/// Records sent and not yet acknowledged, at most.
const WINDOW: usize = 10_000;

/// `gregor produce` arguments.
#[derive(Args, Debug)]
pub struct ProduceArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Topic to write to.
    #[arg(long)]
    topic: String,
    /// Read lines from this file instead of stdin.
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Split each line into key and value at the first SEP (sets parse.key=true).
    #[arg(long = "key-separator", value_name = "SEP")]
    key_separator: Option<String>,
    /// Line-reader settings as in kafka-console-producer: parse.key, key.separator,
    /// parse.headers, headers.delimiter, headers.separator, headers.key.separator, null.marker.
    #[arg(long = "property", value_name = "KEY=VALUE")]
    property: Vec<String>,
    /// A header added to every record: KEY=VALUE, or KEY alone for a null value (repeatable).
    #[arg(long = "header", value_name = "KEY=VALUE")]
    header: Vec<String>,
    /// Write every record to this partition instead of letting the partitioner choose.
    #[arg(long)]
    partition: Option<i32>,
    #[command(flatten)]
    producer: ProducerArgs,
}

/// Producer settings shared by `gregor produce` and `gregor perf produce`, under our names and
/// the ones Kafka's console producer and producer perf test use, so their scripts work as is.
#[derive(Args, Debug)]
pub(crate) struct ProducerArgs {
    /// acks: all (-1), 1 or 0.
    #[arg(long, alias = "request-required-acks")]
    acks: Option<String>,
    /// compression.type: none, gzip, snappy, lz4 or zstd.
    #[arg(
        long = "compression-type",
        alias = "compression-codec",
        value_name = "CODEC"
    )]
    compression_type: Option<String>,
    /// Any producer setting under its Kafka name (repeatable, or several after one flag as
    /// `--producer-props` takes them), e.g. linger.ms=10.
    #[arg(
        long = "producer-property",
        alias = "producer-props",
        value_name = "KEY=VALUE",
        num_args = 1..
    )]
    producer_property: Vec<String>,
    /// A properties file of producer settings (overridden by the flags above).
    #[arg(long = "producer.config", value_name = "FILE")]
    producer_config: Option<PathBuf>,
}

impl ProducerArgs {
    /// The producer config: the connection's properties, then `--producer.config`, then
    /// `--acks`, `--compression-type` and `--producer-property` (the last one given for a key
    /// wins).
    pub(crate) fn config(&self, connect: &ConnectArgs) -> Result<ProducerConfig> {
        let mut pairs = connect.properties()?;
        if let Some(path) = &self.producer_config {
            for (k, v) in super::read_properties(path)? {
                super::set_property(&mut pairs, &k, &v);
            }
        }
        if let Some(acks) = &self.acks {
            super::set_property(&mut pairs, "acks", acks);
        }
        if let Some(codec) = &self.compression_type {
            super::set_property(&mut pairs, "compression.type", codec);
        }
        super::merge_properties(&mut pairs, &self.producer_property, "--producer-property")?;
        Ok(ProducerConfig::from_properties(pairs)?)
    }
}

/// How lines become records (kafka-console-producer's `LineMessageReader` settings).
#[derive(Debug, Clone, PartialEq)]
struct LineFormat {
    parse_key: bool,
    key_separator: String,
    parse_headers: bool,
    headers_delimiter: String,
    headers_separator: String,
    headers_key_separator: String,
    null_marker: Option<String>,
}

impl LineFormat {
    fn from_args(args: &ProduceArgs) -> Result<LineFormat> {
        let mut format = LineFormat {
            parse_key: false,
            key_separator: "\t".into(),
            parse_headers: false,
            headers_delimiter: "\t".into(),
            headers_separator: ",".into(),
            headers_key_separator: ":".into(),
            null_marker: None,
        };
        for pair in &args.property {
            let (key, value) = super::key_value(pair, "--property")?;
            let flag = || -> Result<bool> {
                value
                    .parse()
                    .with_context(|| format!("--property {key}: expected true or false"))
            };
            match key {
                "parse.key" => format.parse_key = flag()?,
                "key.separator" => format.key_separator = value.to_string(),
                "parse.headers" => format.parse_headers = flag()?,
                "headers.delimiter" => format.headers_delimiter = value.to_string(),
                "headers.separator" => format.headers_separator = value.to_string(),
                "headers.key.separator" => format.headers_key_separator = value.to_string(),
                "null.marker" => format.null_marker = Some(value.to_string()),
                _ => bail!(
                    "unknown --property {key}; expected parse.key, key.separator, parse.headers, \
                     headers.delimiter, headers.separator, headers.key.separator or null.marker"
                ),
            }
        }
        if let Some(sep) = &args.key_separator {
            format.parse_key = true;
            format.key_separator = sep.clone();
        }
        for (name, value) in [
            ("key.separator", &format.key_separator),
            ("headers.delimiter", &format.headers_delimiter),
            ("headers.separator", &format.headers_separator),
            ("headers.key.separator", &format.headers_key_separator),
        ] {
            if value.is_empty() {
                bail!("{name} must not be empty");
            }
        }
        Ok(format)
    }

    fn nullable(&self, text: &str) -> Option<Bytes> {
        match &self.null_marker {
            Some(marker) if marker == text => None,
            _ => Some(Bytes::copy_from_slice(text.as_bytes())),
        }
    }

    /// The key, value and per-line headers of one line (line number for errors).
    #[allow(clippy::type_complexity)]
    fn parse(
        &self,
        line: &str,
        number: usize,
    ) -> Result<(Option<Bytes>, Option<Bytes>, Vec<(String, Option<Bytes>)>)> {
        let mut rest = line;
        let mut headers = Vec::new();
        if self.parse_headers {
            let (head, tail) = rest
                .split_once(self.headers_delimiter.as_str())
                .with_context(|| {
                    format!(
                        "line {number}: no headers delimiter {:?}",
                        self.headers_delimiter
                    )
                })?;
            rest = tail;
            for item in head.split(self.headers_separator.as_str()) {
                if item.is_empty() {
                    continue;
                }
                let (k, v) = match item.split_once(self.headers_key_separator.as_str()) {
                    Some((k, v)) => (k, self.nullable(v)),
                    None => (item, None),
                };
                headers.push((k.to_string(), v));
            }
        }
        let (key, value) = if self.parse_key {
            let (k, v) = rest
                .split_once(self.key_separator.as_str())
                .with_context(|| {
                    format!(
                        "line {number}: no key separator {:?} (parse.key is on)",
                        self.key_separator
                    )
                })?;
            (self.nullable(k), self.nullable(v))
        } else {
            (None, self.nullable(rest))
        };
        Ok((key, value, headers))
    }
}

/// Explains a failure to reach the topic in the user's terms.
pub(crate) fn topic_error(topic: &str, error: ClientError) -> anyhow::Error {
    // UNKNOWN_TOPIC_OR_PARTITION
    let hint = if error.code().map(|c| c.0) == Some(3) {
        "; create it first (gregor topics create --topic …) or enable auto.create.topics.enable"
    } else {
        ""
    };
    anyhow::Error::new(error).context(format!("cannot produce to topic {topic}{hint}"))
}

/// Runs `gregor produce`.
pub async fn run(args: ProduceArgs) -> Result<()> {
    let format = LineFormat::from_args(&args)?;
    let static_headers: Vec<(String, Option<Bytes>)> = args
        .header
        .iter()
        .map(|h| match h.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(Bytes::copy_from_slice(v.as_bytes()))),
            None => (h.clone(), None),
        })
        .collect();
    let config = args.producer.config(&args.connect)?;
    let producer = Producer::new(config)?;
    let partitions = producer
        .partition_count(&args.topic)
        .await
        .map_err(|e| topic_error(&args.topic, e))?;
    if let Some(p) = args.partition {
        if p < 0 || p as usize >= partitions {
            bail!(
                "partition {p} does not exist: topic {} has {partitions} partition(s)",
                args.topic
            );
        }
    }

    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<String>>(1024);
    let file = args.file.clone();
    // A file's size is known: show how far along it is (at a terminal).
    let bar = file
        .as_ref()
        .and_then(|f| std::fs::metadata(f).ok())
        .and_then(|m| super::output::progress(m.len(), true));
    // Detached: after an error the tool exits with it at once instead of waiting for a line
    // (or EOF) on an interactive stdin; after EOF the thread has already ended.
    std::thread::spawn(move || {
        let input: Box<dyn BufRead> = match file {
            Some(path) => match std::fs::File::open(&path) {
                Ok(f) => Box::new(std::io::BufReader::new(f)),
                Err(e) => {
                    let _ = tx.blocking_send(Err(std::io::Error::new(
                        e.kind(),
                        format!("cannot read {}: {e}", path.display()),
                    )));
                    return;
                }
            },
            None => Box::new(std::io::stdin().lock()),
        };
        for line in input.lines() {
            let failed = line.is_err();
            if tx.blocking_send(line).is_err() || failed {
                return;
            }
        }
    });

    let mut pending: VecDeque<(usize, DeliveryFuture)> = VecDeque::new();
    let mut number = 0;
    let result: Result<()> = async {
        while let Some(line) = rx.recv().await {
            number += 1;
            let line = line?;
            if let Some(bar) = &bar {
                bar.inc(line.len() as u64 + 1);
            }
            let line = line.strip_suffix('\r').unwrap_or(&line);
            let (key, value, mut headers) = format.parse(line, number)?;
            let mut all_headers = static_headers.clone();
            all_headers.append(&mut headers);
            let record = ProducerRecord {
                topic: args.topic.clone(),
                partition: args.partition,
                key,
                value,
                headers: all_headers,
                timestamp: None,
            };
            pending.push_back((number, producer.send(record)));
            while pending.len() > WINDOW {
                let (n, f) = pending.pop_front().expect("non-empty");
                f.await
                    .with_context(|| format!("line {n} was not delivered"))?;
            }
        }
        producer.flush().await;
        for (n, f) in pending.drain(..) {
            f.await
                .with_context(|| format!("line {n} was not delivered"))?;
        }
        Ok(())
    }
    .await;
    drop(rx);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    producer.close().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ProduceArgs,
    }

    fn format(argv: &[&str]) -> LineFormat {
        let mut all = vec!["produce", "--topic", "t"];
        all.extend_from_slice(argv);
        LineFormat::from_args(&Cli::parse_from(all).args).unwrap()
    }

    #[test]
    fn kafka_flag_names_work_and_the_last_setting_wins() {
        let file =
            std::env::temp_dir().join(format!("gregor-producer-{}.properties", std::process::id()));
        std::fs::write(&file, "linger.ms=1\nacks=0\nbatch.size=99\n").unwrap();
        let cli = Cli::parse_from([
            "produce",
            "--topic",
            "t",
            "--producer.config",
            file.to_str().unwrap(),
            "--request-required-acks",
            "1",
            "--compression-codec",
            "gzip",
            "--producer-props",
            "linger.ms=7",
            "client.id=a",
            "--producer-property",
            "client.id=b",
        ]);
        let config = cli.args.producer.config(&cli.args.connect).unwrap();
        assert_eq!(config.acks, 1);
        assert_eq!(config.compression.name(), "gzip");
        assert_eq!(config.linger, std::time::Duration::from_millis(7));
        assert_eq!(config.batch_size, 99);
        assert_eq!(config.common.client_id, "b");
        std::fs::remove_file(&file).unwrap();

        let cli = Cli::parse_from(["produce", "--topic", "t", "--producer-property", "nokey"]);
        let err = cli.args.producer.config(&cli.args.connect).unwrap_err();
        assert!(
            err.to_string()
                .contains("--producer-property expects KEY=VALUE"),
            "{err}"
        );
    }

    #[test]
    fn lines_become_keys_values_and_headers() {
        let plain = format(&[]);
        let (k, v, h) = plain.parse("a:b", 1).unwrap();
        assert_eq!((k, v.as_deref(), h.len()), (None, Some(&b"a:b"[..]), 0));

        let keyed = format(&["--key-separator", ":"]);
        let (k, v, _) = keyed.parse("k1:v:1", 1).unwrap();
        assert_eq!(
            (k.as_deref(), v.as_deref()),
            (Some(&b"k1"[..]), Some(&b"v:1"[..]))
        );
        let (k, _, _) = keyed.parse(":v", 1).unwrap();
        assert_eq!(k.as_deref(), Some(&b""[..]));
        assert!(
            keyed
                .parse("novalue", 3)
                .unwrap_err()
                .to_string()
                .contains("line 3")
        );

        let full = format(&[
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=|",
            "--property",
            "parse.headers=true",
            "--property",
            "null.marker=NULL",
        ]);
        let (k, v, h) = full.parse("a:1,b:NULL,c\tNULL|value", 1).unwrap();
        assert_eq!(k, None);
        assert_eq!(v.as_deref(), Some(&b"value"[..]));
        assert_eq!(
            h,
            vec![
                ("a".to_string(), Some(Bytes::from("1"))),
                ("b".to_string(), None),
                ("c".to_string(), None)
            ]
        );
    }
}

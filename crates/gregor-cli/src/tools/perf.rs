//! `gregor perf`: load generators in the style of Kafka's `kafka-producer-perf-test` and
//! `kafka-consumer-perf-test`.
//!
//! `perf produce` sends `--num-records` records of `--record-size` random bytes as fast as
//! the producer takes them (or at most `--throughput` records/s), prints a progress line every
//! five seconds and a final line with throughput and latency percentiles. Latency is measured
//! per record from `send` to its acknowledgement, as Kafka's tool does. At most 64 MiB of
//! records are unacknowledged at a time, Kafka's `buffer.memory` playing the same role.
//!
//! `perf consume` reads a topic from its start with the consumer's `assign` (no group) and
//! reports records/s and MB/s.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::{Args, Subcommand};
use gregor_client::config::ConsumerConfig;
use gregor_client::consumer::Consumer;
use gregor_client::producer::{Producer, ProducerRecord};
use tokio::sync::Semaphore;

use super::ConnectArgs;
use super::produce::{ProducerArgs, topic_error};

/// How often a progress line is printed.
const REPORT_INTERVAL: Duration = Duration::from_secs(5);
/// Bytes of record values unacknowledged at most.
const BUFFER_BYTES: usize = 64 << 20;

/// `gregor perf` arguments.
#[derive(Args, Debug)]
pub struct PerfArgs {
    #[command(subcommand)]
    command: PerfCommand,
}

#[derive(Subcommand, Debug)]
enum PerfCommand {
    /// Producer load test (kafka-producer-perf-test).
    Produce(ProducePerfArgs),
    /// Consumer load test (kafka-consumer-perf-test).
    Consume(ConsumePerfArgs),
}

/// `gregor perf produce` arguments.
#[derive(Args, Debug)]
struct ProducePerfArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Topic to write to.
    #[arg(long)]
    topic: String,
    /// Records to send.
    #[arg(long = "num-records")]
    num_records: u64,
    /// Bytes per record value.
    #[arg(long = "record-size")]
    record_size: usize,
    /// At most this many records per second; -1 for no limit.
    #[arg(long, default_value_t = -1.0, allow_hyphen_values = true)]
    throughput: f64,
    #[command(flatten)]
    producer: ProducerArgs,
}

/// `gregor perf consume` arguments.
#[derive(Args, Debug)]
struct ConsumePerfArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Topic to read (every partition, from its start).
    #[arg(long)]
    topic: String,
    /// Records to read before stopping (`--messages`, as kafka-consumer-perf-test calls it).
    #[arg(long = "num-records", alias = "messages")]
    num_records: u64,
    /// Give up when no record arrived for this many milliseconds.
    #[arg(long, default_value_t = 10_000)]
    timeout: u64,
    /// Any consumer setting under its Kafka name (repeatable), e.g. fetch.max.bytes=52428800.
    #[arg(long = "consumer-property", value_name = "KEY=VALUE")]
    consumer_property: Vec<String>,
}

/// Runs `gregor perf`.
pub async fn run(args: PerfArgs) -> Result<()> {
    match args.command {
        PerfCommand::Produce(args) => produce(args).await,
        PerfCommand::Consume(args) => consume(args).await,
    }
}

/// Reads `--num-records` records from the start of every partition with `assign` (no group),
/// printing progress every five seconds and a final throughput line.
async fn consume(args: ConsumePerfArgs) -> Result<()> {
    let mut pairs = args.connect.properties()?;
    pairs.push(("auto.offset.reset".into(), "earliest".into()));
    pairs.push(("enable.auto.commit".into(), "false".into()));
    super::merge_properties(&mut pairs, &args.consumer_property, "--consumer-property")?;
    let mut consumer = Consumer::new(ConsumerConfig::from_properties(pairs)?)?;
    let topic = consumer
        .cluster()
        .topic(&args.topic)
        .await
        .with_context(|| format!("cannot read topic {}", args.topic))?;
    let partitions = topic
        .partitions
        .iter()
        .map(|p| (args.topic.clone(), p.id))
        .collect();
    consumer.assign(partitions).await?;
    consumer.seek_to_beginning(&[]).await?;

    let start = Instant::now();
    let (mut count, mut bytes) = (0u64, 0u64);
    let (mut window_start, mut window_count, mut window_bytes) = (start, 0u64, 0u64);
    let mut last_record = Instant::now();
    while count < args.num_records {
        let records = consumer.poll(Duration::from_millis(500)).await?;
        if records.is_empty() {
            if last_record.elapsed() > Duration::from_millis(args.timeout) {
                bail!(
                    "no record for {} ms after {count} of {} records",
                    args.timeout,
                    args.num_records
                );
            }
            continue;
        }
        last_record = Instant::now();
        for record in &records {
            let size = record.key.as_ref().map_or(0, |k| k.len())
                + record.value.as_ref().map_or(0, |v| v.len());
            count += 1;
            bytes += size as u64;
            window_count += 1;
            window_bytes += size as u64;
        }
        if window_start.elapsed() >= REPORT_INTERVAL {
            let secs = window_start.elapsed().as_secs_f64();
            println!(
                "{window_count} records consumed, {:.1} records/sec ({:.2} MB/sec).",
                window_count as f64 / secs,
                window_bytes as f64 / secs / (1024.0 * 1024.0)
            );
            (window_start, window_count, window_bytes) = (Instant::now(), 0, 0);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{count} records consumed, {:.1} records/sec ({:.2} MB/sec), {:.2} MB in {secs:.2} s.",
        count as f64 / secs,
        bytes as f64 / secs / (1024.0 * 1024.0),
        bytes as f64 / (1024.0 * 1024.0),
    );
    let _ = consumer.close().await;
    Ok(())
}

/// Latency samples and the running window of the progress line.
struct Stats {
    start: Instant,
    latencies_us: Vec<u32>,
    bytes: u64,
    errors: u64,
    first_error: Option<String>,
    window_start: Instant,
    window_count: u64,
    window_bytes: u64,
    window_latency_us: u64,
    window_max_us: u32,
}

impl Stats {
    fn new(expected: u64) -> Stats {
        let now = Instant::now();
        Stats {
            start: now,
            latencies_us: Vec::with_capacity(expected.min(50_000_000) as usize),
            bytes: 0,
            errors: 0,
            first_error: None,
            window_start: now,
            window_count: 0,
            window_bytes: 0,
            window_latency_us: 0,
            window_max_us: 0,
        }
    }

    fn record(&mut self, latency: Duration, bytes: usize) {
        let us = latency.as_micros().min(u32::MAX as u128) as u32;
        self.latencies_us.push(us);
        self.bytes += bytes as u64;
        self.window_count += 1;
        self.window_bytes += bytes as u64;
        self.window_latency_us += u64::from(us);
        self.window_max_us = self.window_max_us.max(us);
        if self.window_start.elapsed() >= REPORT_INTERVAL {
            let secs = self.window_start.elapsed().as_secs_f64();
            println!(
                "{} records sent, {:.1} records/sec ({:.2} MB/sec), {:.1} ms avg latency, {:.1} ms max latency.",
                self.window_count,
                self.window_count as f64 / secs,
                self.window_bytes as f64 / secs / (1024.0 * 1024.0),
                self.window_latency_us as f64 / self.window_count as f64 / 1000.0,
                f64::from(self.window_max_us) / 1000.0,
            );
            self.window_start = Instant::now();
            self.window_count = 0;
            self.window_bytes = 0;
            self.window_latency_us = 0;
            self.window_max_us = 0;
        }
    }

    /// The final line, as kafka-producer-perf-test prints it (with fractional milliseconds).
    fn summary(&mut self) -> String {
        let secs = self.start.elapsed().as_secs_f64();
        let n = self.latencies_us.len();
        self.latencies_us.sort_unstable();
        let pct = |p: f64| -> f64 {
            if n == 0 {
                return 0.0;
            }
            let i = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
            f64::from(self.latencies_us[i]) / 1000.0
        };
        let avg = if n == 0 {
            0.0
        } else {
            self.latencies_us.iter().map(|l| u64::from(*l)).sum::<u64>() as f64 / n as f64 / 1000.0
        };
        format!(
            "{n} records sent, {:.1} records/sec ({:.2} MB/sec), {avg:.2} ms avg latency, \
             {:.2} ms max latency, {:.2} ms 50th, {:.2} ms 95th, {:.2} ms 99th, {:.2} ms 99.9th.",
            n as f64 / secs,
            self.bytes as f64 / secs / (1024.0 * 1024.0),
            pct(1.0),
            pct(0.5),
            pct(0.95),
            pct(0.99),
            pct(0.999),
        )
    }
}

/// The stats, even if a callback panicked while holding them.
fn lock(stats: &Mutex<Stats>) -> MutexGuard<'_, Stats> {
    stats.lock().unwrap_or_else(|e| e.into_inner())
}

/// Random printable payload, as Kafka's tool makes (uppercase letters).
fn payload(size: usize) -> Bytes {
    let mut x: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'A' + (x % 26) as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

async fn produce(args: ProducePerfArgs) -> Result<()> {
    if args.num_records == 0 {
        bail!("--num-records must be at least 1");
    }
    let config = args.producer.config(&args.connect)?;
    let producer = Producer::new(config)?;
    producer
        .partition_count(&args.topic)
        .await
        .map_err(|e| topic_error(&args.topic, e))?;

    let value = payload(args.record_size);
    let window = (BUFFER_BYTES / args.record_size.max(1)).clamp(100, 1_000_000);
    let permits = Arc::new(Semaphore::new(window));
    let stats = Arc::new(Mutex::new(Stats::new(args.num_records)));
    let start = Instant::now();
    for i in 0..args.num_records {
        let permit = Arc::clone(&permits)
            .acquire_owned()
            .await
            .context("the send window closed")?;
        let sent = Instant::now();
        let stats_for_callback = Arc::clone(&stats);
        let size = args.record_size;
        producer.send_with_callback(
            ProducerRecord::new(args.topic.clone(), value.clone()),
            move |result| {
                let mut stats = lock(&stats_for_callback);
                match result {
                    Ok(_) => stats.record(sent.elapsed(), size),
                    Err(e) => {
                        stats.errors += 1;
                        if stats.first_error.is_none() {
                            stats.first_error = Some(e.to_string());
                        }
                    }
                }
                drop(permit);
            },
        );
        if args.throughput > 0.0 {
            // Kafka's ThroughputThrottler: sleep whenever ahead of the target rate.
            let due = Duration::from_secs_f64((i + 1) as f64 / args.throughput);
            let elapsed = start.elapsed();
            if due > elapsed {
                tokio::time::sleep(due - elapsed).await;
            }
        }
    }
    producer.flush().await;
    producer.close().await;
    let mut stats = lock(&stats);
    println!("{}", stats.summary());
    if stats.errors > 0 {
        bail!(
            "{} of {} records failed; the first: {}",
            stats.errors,
            args.num_records,
            stats.first_error.as_deref().unwrap_or("?")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_payload() {
        let mut stats = Stats::new(100);
        for ms in 1..=100u64 {
            stats.record(Duration::from_millis(ms), 10);
        }
        let line = stats.summary();
        assert!(line.starts_with("100 records sent"), "{line}");
        assert!(line.contains("50.50 ms avg latency"), "{line}");
        assert!(line.contains("100.00 ms max latency, 50.00 ms 50th, 95.00 ms 95th, 99.00 ms 99th, 100.00 ms 99.9th"), "{line}");
        let p = payload(100);
        assert_eq!(p.len(), 100);
        assert!(p.iter().all(u8::is_ascii_uppercase));
    }
}

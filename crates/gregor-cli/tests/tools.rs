//! The admin tools (`gregor topics|configs|cluster|groups`) run as a user runs them: the
//! built binary against a real broker (in-process, on a free port), checking what they print
//! — tables and JSON — and their exit codes, errors included.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{BufMut, Bytes, BytesMut};
use gregor_broker::RunningBroker;
use gregor_broker::config::BrokerConfig;
use gregor_client::Cluster;
use gregor_client::config::CommonConfig;
use gregor_protocol::batch::{Compression, RecordBatchBuilder};
use kafka_protocol::messages::consumer_protocol_assignment::{
    ConsumerProtocolAssignment, TopicPartition as Assigned,
};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    GroupId, JoinGroupRequest, LeaveGroupRequest, ProduceRequest, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};

/// A broker running on its own runtime for the length of a test.
struct TestBroker {
    runtime: tokio::runtime::Runtime,
    broker: Option<RunningBroker>,
    dir: std::path::PathBuf,
    bootstrap: String,
}

impl TestBroker {
    fn start() -> TestBroker {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "gregor-tools-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let props = format!(
            "listeners=PLAINTEXT://127.0.0.1:0\nlog.dirs={}\ngroup.initial.rebalance.delay.ms=0\nnum.partitions=2\n",
            dir.display()
        );
        let (config, _) = BrokerConfig::from_properties(&props, &[]).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let broker = runtime.block_on(RunningBroker::start(config)).unwrap();
        let bootstrap = broker.local_addrs()[0].to_string();
        TestBroker {
            runtime,
            broker: Some(broker),
            dir,
            bootstrap,
        }
    }

    /// Runs `gregor <args> --bootstrap-server <this broker>`.
    fn run(&self, args: &[&str]) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--bootstrap-server", &self.bootstrap]);
        gregor(&all)
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "{args:?} failed: {}",
            stderr(&output)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs and expects exit code 1 with one `error: ` line; returns that line.
    fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{args:?}: {}",
            stderr(&output)
        );
        let err = stderr(&output);
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
        assert_eq!(lines.len(), 1, "{err}");
        lines[0].to_string()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    fn cluster(&self, client_id: &str) -> std::sync::Arc<Cluster> {
        let mut config = CommonConfig::new(&self.bootstrap);
        config.client_id = client_id.to_string();
        Cluster::new(config)
    }

    /// Appends `count` records to a partition.
    fn produce(&self, topic: &str, partition: i32, count: usize) {
        let mut batch = RecordBatchBuilder::new(0, Compression::None);
        for i in 0..count {
            batch.append(i as i64, 1000 + i as i64, None, Some(b"v"), &[]);
        }
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(topic.into())))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(partition)
                            .with_records(Some(Bytes::from(batch.build().unwrap()))),
                    ]),
            ]);
        let cluster = self.cluster("producer");
        let response = self.runtime.block_on(async {
            cluster
                .connection(1)
                .await
                .unwrap()
                .send(&request, 9)
                .await
                .unwrap()
        });
        assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    }

    /// Joins `group` as a classic consumer owning `partitions` of `topic`; returns the
    /// member id.
    fn join(&self, cluster: &Cluster, group: &str, topic: &str, partitions: Vec<i32>) -> String {
        self.runtime.block_on(async {
            let connection = cluster.coordinator(group, 0).await.unwrap();
            let mut member_id = String::new();
            let joined = loop {
                let request = JoinGroupRequest::default()
                    .with_group_id(GroupId(StrBytes::from_string(group.into())))
                    .with_session_timeout_ms(30_000)
                    .with_rebalance_timeout_ms(30_000)
                    .with_member_id(StrBytes::from_string(member_id.clone()))
                    .with_protocol_type(StrBytes::from_static_str("consumer"))
                    .with_protocols(vec![
                        JoinGroupRequestProtocol::default()
                            .with_name(StrBytes::from_static_str("range"))
                            .with_metadata(Bytes::from_static(&[0; 10])),
                    ]);
                let response = connection.send(&request, 5).await.unwrap();
                if response.error_code == 79 {
                    member_id = response.member_id.to_string();
                    continue;
                }
                assert_eq!(response.error_code, 0);
                break response;
            };
            let mut assignment = BytesMut::new();
            assignment.put_i16(0);
            ConsumerProtocolAssignment::default()
                .with_assigned_partitions(vec![
                    Assigned::default()
                        .with_topic(TopicName(StrBytes::from_string(topic.into())))
                        .with_partitions(partitions),
                ])
                .encode(&mut assignment, 0)
                .unwrap();
            let request = SyncGroupRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(group.into())))
                .with_generation_id(joined.generation_id)
                .with_member_id(joined.member_id.clone())
                .with_assignments(vec![
                    SyncGroupRequestAssignment::default()
                        .with_member_id(joined.member_id.clone())
                        .with_assignment(assignment.freeze()),
                ]);
            assert_eq!(connection.send(&request, 3).await.unwrap().error_code, 0);
            joined.member_id.to_string()
        })
    }

    fn leave(&self, cluster: &Cluster, group: &str, member_id: &str) {
        self.runtime.block_on(async {
            let request = LeaveGroupRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(group.into())))
                .with_member_id(StrBytes::from_string(member_id.into()));
            let response = cluster
                .coordinator(group, 0)
                .await
                .unwrap()
                .send(&request, 2)
                .await
                .unwrap();
            assert_eq!(response.error_code, 0);
        });
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(broker) = self.broker.take() {
            let _ = self.runtime.block_on(broker.shutdown());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn gregor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run gregor")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn topics_create_list_describe_alter_delete() {
    let b = TestBroker::start();
    let out = b.ok(&[
        "topics",
        "create",
        "--topic",
        "orders",
        "--partitions",
        "3",
        "--replication-factor",
        "1",
        "--config",
        "retention.ms=60000",
        "--config",
        "cleanup.policy=compact",
    ]);
    assert_eq!(out, "Created topic orders.\n");
    // Broker defaults when not given (num.partitions=2).
    b.ok(&["topics", "create", "--topic", "plain"]);

    // Creating twice: Kafka's error name, what to do, exit 1; --if-not-exists accepts it.
    let err = b.fails(&["topics", "create", "--topic", "orders"]);
    assert!(
        err.starts_with("error: TOPIC_ALREADY_EXISTS: topic 'orders' already exists"),
        "{err}"
    );
    assert_eq!(
        b.ok(&["topics", "create", "--topic", "orders", "--if-not-exists"]),
        ""
    );
    let err = b.fails(&["topics", "create", "--topic", "zero", "--partitions", "0"]);
    assert!(err.starts_with("error: INVALID_PARTITIONS: "), "{err}");
    let err = b.fails(&[
        "topics",
        "create",
        "--topic",
        "cfg",
        "--config",
        "retention.ms=soon",
    ]);
    assert!(err.starts_with("error: INVALID_CONFIG: "), "{err}");

    // list: one name per line; --exclude-internal hides __consumer_offsets.
    let listed = b.ok(&["topics", "list", "--exclude-internal"]);
    assert_eq!(listed, "orders\nplain\n");
    let listed = b.json(&["topics", "list"]);
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"orders") && names.contains(&"plain"));

    // describe: kafka-topics' layout.
    let out = b.ok(&["topics", "describe", "--topic", "orders"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[0].starts_with("Topic: orders\tTopicId: "), "{out}");
    assert!(
        lines[0].ends_with(
            "\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: cleanup.policy=compact,retention.ms=60000"
        ),
        "{out}"
    );
    assert_eq!(
        lines[1],
        "\tTopic: orders\tPartition: 0\tLeader: 1\tReplicas: 1\tIsr: 1"
    );
    assert_eq!(
        lines[3],
        "\tTopic: orders\tPartition: 2\tLeader: 1\tReplicas: 1\tIsr: 1"
    );
    let described = b.json(&["topics", "describe", "--topic", "orders"]);
    let orders = &described[0];
    assert_eq!(orders["topic"], "orders");
    assert_eq!(orders["partition_count"], 3);
    assert_eq!(orders["replication_factor"], 1);
    assert_eq!(orders["configs"]["retention.ms"], "60000");
    assert_eq!(orders["partitions"][2]["leader"], 1);
    assert_eq!(orders["partitions"][2]["isr"], serde_json::json!([1]));
    let all = b.ok(&["topics", "describe", "--exclude-internal"]);
    assert!(
        all.contains("Topic: plain\t") && !all.contains("__consumer_offsets"),
        "{all}"
    );
    let err = b.fails(&["topics", "describe", "--topic", "nope"]);
    assert_eq!(
        err,
        "error: UNKNOWN_TOPIC_OR_PARTITION: topic 'nope' does not exist"
    );

    // alter: partitions only grow.
    assert_eq!(
        b.ok(&["topics", "alter", "--topic", "orders", "--partitions", "5"]),
        "Topic orders now has 5 partitions.\n"
    );
    assert_eq!(
        b.json(&["topics", "describe", "--topic", "orders"])[0]["partition_count"],
        5
    );
    let err = b.fails(&["topics", "alter", "--topic", "orders", "--partitions", "2"]);
    assert!(err.starts_with("error: INVALID_PARTITIONS: "), "{err}");
    let err = b.fails(&["topics", "alter", "--topic", "nope", "--partitions", "2"]);
    assert_eq!(
        err,
        "error: UNKNOWN_TOPIC_OR_PARTITION: topic 'nope' does not exist"
    );

    // delete, and --if-exists.
    assert_eq!(
        b.ok(&["topics", "delete", "--topic", "plain"]),
        "Deleted topic plain.\n"
    );
    let err = b.fails(&["topics", "delete", "--topic", "plain"]);
    assert!(
        err.starts_with("error: UNKNOWN_TOPIC_OR_PARTITION: topic 'plain' does not exist"),
        "{err}"
    );
    assert_eq!(
        b.ok(&["topics", "delete", "--topic", "plain", "--if-exists"]),
        ""
    );
    assert_eq!(b.ok(&["topics", "list", "--exclude-internal"]), "orders\n");
}

#[test]
fn configs_and_cluster() {
    let b = TestBroker::start();
    b.ok(&[
        "topics",
        "create",
        "--topic",
        "t",
        "--config",
        "retention.ms=60000",
    ]);
    let out = b.ok(&[
        "configs",
        "describe",
        "--entity-type",
        "topics",
        "--entity-name",
        "t",
    ]);
    assert_eq!(
        out,
        "NAME          VALUE  SOURCE\nretention.ms  60000  DYNAMIC_TOPIC_CONFIG\n"
    );
    let all = b.json(&[
        "configs",
        "describe",
        "--entity-type",
        "topics",
        "--entity-name",
        "t",
        "--all",
    ]);
    let segment = all
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "segment.bytes")
        .unwrap();
    assert_eq!(segment["source"], "DEFAULT_CONFIG");

    let out = b.ok(&[
        "configs",
        "alter",
        "--entity-type",
        "topics",
        "--entity-name",
        "t",
        "--add-config",
        "cleanup.policy=[compact,delete],segment.bytes=1048576",
        "--delete-config",
        "retention.ms",
    ]);
    assert_eq!(out, "Completed updating config for topic 't'.\n");
    let now = b.json(&[
        "configs",
        "describe",
        "--entity-type",
        "topics",
        "--entity-name",
        "t",
    ]);
    let pairs: Vec<(String, String)> = now
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        [
            ("cleanup.policy".into(), "compact,delete".into()),
            ("segment.bytes".into(), "1048576".into())
        ]
    );
    let err = b.fails(&[
        "configs",
        "alter",
        "--entity-type",
        "topics",
        "--entity-name",
        "t",
        "--add-config",
        "retention.ms=soon",
    ]);
    assert!(err.starts_with("error: INVALID_CONFIG: "), "{err}");
    let err = b.fails(&[
        "configs",
        "describe",
        "--entity-type",
        "topics",
        "--entity-name",
        "nope",
    ]);
    assert_eq!(
        err,
        "error: UNKNOWN_TOPIC_OR_PARTITION: topic 'nope' does not exist"
    );
    let err = b.fails(&[
        "configs",
        "alter",
        "--entity-type",
        "topics",
        "--entity-name",
        "t",
    ]);
    assert!(
        err.starts_with("error: INVALID_REQUEST: nothing to change"),
        "{err}"
    );
    let broker = b.json(&[
        "configs",
        "describe",
        "--entity-type",
        "brokers",
        "--entity-name",
        "1",
        "--all",
    ]);
    assert!(
        broker
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "num.partitions" && c["value"] == "2"),
        "{broker}"
    );

    let out = b.ok(&["cluster", "describe"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("Cluster ID: "), "{out}");
    assert_eq!(lines[1], "Controller: 1");
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["ID", "HOST:PORT", "RACK", "CONTROLLER"]
    );
    assert_eq!(
        lines[3].split_whitespace().collect::<Vec<_>>(),
        ["1", b.bootstrap.as_str(), "-", "yes"]
    );
    let cluster = b.json(&["cluster", "describe"]);
    assert_eq!(cluster["controller"], 1);
    assert_eq!(cluster["brokers"][0]["id"], 1);
    assert_eq!(
        format!(
            "{}:{}",
            cluster["brokers"][0]["host"].as_str().unwrap(),
            cluster["brokers"][0]["port"]
        ),
        b.bootstrap
    );
}

#[test]
fn groups_describe_lag_reset_and_delete() {
    let b = TestBroker::start();
    b.ok(&["topics", "create", "--topic", "t", "--partitions", "2"]);
    b.produce("t", 0, 10);
    b.produce("t", 1, 4);

    // A consumer owning both partitions, with committed offsets 3 and 4.
    let member_cluster = b.cluster("member-client");
    let member = b.join(&member_cluster, "g", "t", vec![0, 1]);
    let listed = b.ok(&["groups", "list"]);
    assert_eq!(listed, "GROUP  STATE   TYPE\ng      Stable  classic\n");
    assert_eq!(
        b.ok(&["groups", "list", "--state", "Empty"]),
        "GROUP  STATE  TYPE\n"
    );

    let members = b.ok(&["groups", "describe", "--group", "g", "--members"]);
    let row: Vec<&str> = members.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        row,
        [
            "g",
            member.as_str(),
            "/127.0.0.1",
            "member-client",
            "2",
            "t(0,1)"
        ]
    );
    let state = b.json(&["groups", "describe", "--group", "g", "--state"]);
    assert_eq!(state["state"], "Stable");
    assert_eq!(state["assignment_strategy"], "range");
    assert_eq!(state["members"], 1);

    // Resetting or deleting an active group is refused.
    let err = b.fails(&[
        "groups",
        "reset-offsets",
        "--group",
        "g",
        "--topic",
        "t",
        "--to-earliest",
        "--execute",
    ]);
    assert!(err.starts_with("error: NON_EMPTY_GROUP: "), "{err}");
    assert!(err.contains("stop its consumers"), "{err}");
    let err = b.fails(&["groups", "delete", "--group", "g"]);
    assert!(err.starts_with("error: NON_EMPTY_GROUP: "), "{err}");

    // The offsets view before any commit: owners, log end, no lag yet.
    let offsets = b.json(&["groups", "describe", "--group", "g"]);
    let p0 = &offsets["partitions"][0];
    assert_eq!(p0["log_end_offset"], 10);
    assert_eq!(p0["current_offset"], serde_json::Value::Null);
    assert_eq!(p0["consumer_id"], member.as_str());
    assert_eq!(p0["client_id"], "member-client");

    // Once the member leaves: reset by plan, then execute, and lag follows.
    b.leave(&member_cluster, "g", &member);
    let plan = b.ok(&[
        "groups",
        "reset-offsets",
        "--group",
        "g",
        "--topic",
        "t",
        "--to-offset",
        "3",
    ]);
    assert_eq!(
        plan,
        "GROUP  TOPIC  PARTITION  NEW-OFFSET\ng      t      0          3\ng      t      1          3\n"
    );
    // A dry run changed nothing.
    assert_eq!(
        b.json(&["groups", "describe", "--group", "g"])["partitions"],
        serde_json::json!([])
    );
    b.ok(&[
        "groups",
        "reset-offsets",
        "--group",
        "g",
        "--topic",
        "t:0",
        "--to-offset",
        "3",
        "--execute",
    ]);
    b.ok(&[
        "groups",
        "reset-offsets",
        "--group",
        "g",
        "--topic",
        "t:1",
        "--to-latest",
        "--execute",
    ]);
    let out = b.ok(&["groups", "describe", "--group", "g"]);
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        [
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID"
        ]
    );
    assert_eq!(rows[1], ["g", "t", "0", "3", "10", "7", "-", "-", "-"]);
    assert_eq!(rows[2], ["g", "t", "1", "4", "4", "0", "-", "-", "-"]);

    // shift-by is relative to the committed offset and stays within the log.
    let shifted = b.json(&[
        "groups",
        "reset-offsets",
        "--group",
        "g",
        "--all-topics",
        "--shift-by",
        "-5",
        "--execute",
    ]);
    assert_eq!(shifted["executed"], true);
    let new: Vec<i64> = shifted["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["new_offset"].as_i64().unwrap())
        .collect();
    assert_eq!(new, [0, 0]);
    // Timestamps: records of partition 0 have timestamps 1000..1009.
    let at = b.json(&[
        "groups",
        "reset-offsets",
        "--group",
        "g",
        "--topic",
        "t:0",
        "--to-datetime",
        "1970-01-01T00:00:01.004Z",
    ]);
    assert_eq!(at["partitions"][0]["new_offset"], 4);
    assert_eq!(at["executed"], false);

    // Bad arguments: clap's usage error (exit 2) or one clear line (exit 1).
    let missing_spec = b.run(&["groups", "reset-offsets", "--group", "g", "--topic", "t"]);
    assert_eq!(missing_spec.status.code(), Some(2));
    assert!(
        stderr(&missing_spec).contains("--to-earliest"),
        "{}",
        stderr(&missing_spec)
    );
    let err = b.fails(&[
        "groups",
        "reset-offsets",
        "--group",
        "g",
        "--topic",
        "t",
        "--to-datetime",
        "yesterday",
    ]);
    assert!(
        err.starts_with("error: INVALID_REQUEST: --to-datetime"),
        "{err}"
    );
    let err = b.fails(&[
        "groups",
        "reset-offsets",
        "--group",
        "g",
        "--topic",
        "nope",
        "--to-earliest",
    ]);
    assert_eq!(
        err,
        "error: UNKNOWN_TOPIC_OR_PARTITION: topic 'nope' does not exist"
    );

    // Delete; then it is gone.
    assert_eq!(
        b.ok(&["groups", "delete", "--group", "g"]),
        "Deletion of requested consumer groups ('g') was successful.\n"
    );
    let err = b.fails(&["groups", "describe", "--group", "g"]);
    assert_eq!(
        err,
        "error: GROUP_ID_NOT_FOUND: consumer group 'g' does not exist"
    );
    let err = b.fails(&["groups", "delete", "--group", "g"]);
    assert_eq!(
        err,
        "error: GROUP_ID_NOT_FOUND: consumer group 'g' does not exist"
    );
}

#[test]
fn unreachable_broker_and_bad_arguments() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let started = std::time::Instant::now();
    for args in [
        &["topics", "list"][..],
        &["groups", "describe", "--group", "g"][..],
        &["cluster", "describe"][..],
        &[
            "configs",
            "describe",
            "--entity-type",
            "topics",
            "--entity-name",
            "t",
        ][..],
    ] {
        let mut all = args.to_vec();
        all.extend(["--bootstrap-server", &addr]);
        let output = gregor(&all);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let err = stderr(&output);
        assert!(
            err.starts_with(&format!(
                "error: NETWORK_EXCEPTION: cannot connect to {addr}"
            )),
            "{err}"
        );
        assert!(err.contains("check --bootstrap-server"), "{err}");
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(20));

    // A broker that accepts connections but never answers: the request timeout from
    // --command-config bounds the wait.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    let dir = std::env::temp_dir().join(format!("gregor-tools-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("admin.properties");
    std::fs::write(&config, "request.timeout.ms=500\nclient.id=tools-test\n").unwrap();
    let started = std::time::Instant::now();
    let output = gregor(&[
        "topics",
        "list",
        "--bootstrap-server",
        &silent_addr,
        "--command-config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.starts_with("error: REQUEST_TIMED_OUT: "), "{err}");
    // Well under the tools' default request.timeout.ms (10 s): the file's 500 ms was used.
    assert!(started.elapsed() < std::time::Duration::from_secs(9));
    drop(silent);

    // A typo in the command config is named.
    std::fs::write(&config, "request.timeout.msx=500\n").unwrap();
    let output = gregor(&[
        "topics",
        "list",
        "--command-config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).starts_with("error: INVALID_CONFIG: request.timeout.msx"),
        "{}",
        stderr(&output)
    );
    let _ = std::fs::remove_dir_all(&dir);

    // Usage mistakes are clap's: exit 2 and a usage message.
    for args in [
        &["topics", "create"][..],
        &["topics", "create", "--topic", "t", "--partitions", "many"][..],
        &[
            "configs",
            "describe",
            "--entity-type",
            "users",
            "--entity-name",
            "x",
        ][..],
        &["groups", "reset-offsets", "--group", "g", "--to-earliest"][..],
    ] {
        let output = gregor(args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn produce_exits_on_a_bad_line_while_stdin_stays_open() {
    use std::io::Write;
    use std::process::Stdio;

    let b = TestBroker::start();
    b.ok(&["topics", "create", "--topic", "typed", "--partitions", "1"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args(["produce", "--topic", "typed", "--key-separator", ":"])
        .args(["--bootstrap-server", &b.bootstrap])
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A user typing at a terminal: a line without the key separator, and stdin left open.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"no separator here\n").unwrap();
    stdin.flush().unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            panic!("gregor produce kept waiting for input after an error");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    drop(stdin);
    assert_eq!(status.code(), Some(1));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("line 1"), "{err}");
}

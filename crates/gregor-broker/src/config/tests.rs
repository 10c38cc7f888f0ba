use super::*;

fn parse(text: &str) -> Result<BrokerConfig, ConfigError> {
    BrokerConfig::from_properties(text, &[]).map(|(c, _)| c)
}

fn with(overrides: &[(&str, &str)]) -> Result<BrokerConfig, ConfigError> {
    let overrides: Vec<(String, String)> = overrides
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    BrokerConfig::from_properties("", &overrides).map(|(c, _)| c)
}

fn listener(name: &str, host: &str, port: u16) -> Listener {
    Listener {
        name: name.into(),
        host: host.into(),
        port,
    }
}

#[test]
fn defaults_are_gregors_single_node_cluster_and_kafkas_values() {
    let (config, ignored) = BrokerConfig::from_properties("", &[]).unwrap();
    assert!(ignored.is_empty());
    assert_eq!(config, BrokerConfig::default());
    assert_eq!(config.node_id, 1);
    assert_eq!(
        config.listeners,
        vec![listener("PLAINTEXT", "127.0.0.1", 9092)]
    );
    assert_eq!(config.advertised_listeners, config.listeners);
    assert_eq!(config.log_dirs, vec![PathBuf::from("./gregor-data")]);
    assert_eq!(config.num_partitions, 1);
    assert_eq!(config.default_replication_factor, 1);
    assert!(config.auto_create_topics_enable);
    assert_eq!(config.log_retention_ms, 604_800_000);
    assert_eq!(config.log_retention_bytes, -1);
    assert_eq!(config.log_segment_bytes, 1_073_741_824);
    assert_eq!(config.log_roll_ms, 604_800_000);
    assert_eq!(config.message_max_bytes, 1_048_588);
    assert_eq!(config.socket_request_max_bytes, 104_857_600);
    assert_eq!(config.group.offsets_topic_num_partitions, 50);
    assert_eq!(config.log_retention_check_interval_ms, 300_000);
    assert_eq!(config.log_flush_interval_messages, 1);
    assert_eq!(config.log_flush_interval_ms, i64::MAX);
    assert!(config.static_configs.is_empty());
    // The broker defaults are exactly the storage engine's topic defaults.
    assert_eq!(config.default_log_config(), LogConfig::default());
}

#[test]
fn retention_precedence_is_ms_then_minutes_then_hours() {
    assert_eq!(
        with(&[("log.retention.hours", "1")])
            .unwrap()
            .log_retention_ms,
        3_600_000
    );
    assert_eq!(
        with(&[("log.retention.hours", "1"), ("log.retention.minutes", "2")])
            .unwrap()
            .log_retention_ms,
        120_000
    );
    let all = with(&[
        ("log.retention.hours", "1"),
        ("log.retention.minutes", "2"),
        ("log.retention.ms", "5"),
    ])
    .unwrap();
    assert_eq!(all.log_retention_ms, 5);
    assert_eq!(all.default_log_config().retention_ms, 5);
    for unlimited in [
        ("log.retention.ms", "-1"),
        ("log.retention.ms", "-7"),
        ("log.retention.minutes", "-1"),
        ("log.retention.hours", "-1"),
    ] {
        assert_eq!(
            with(&[unlimited]).unwrap().log_retention_ms,
            -1,
            "{unlimited:?}"
        );
    }
    // Roll time and flush time follow the same pattern.
    let roll = with(&[("log.roll.hours", "2")]).unwrap();
    assert_eq!(roll.log_roll_ms, 7_200_000);
    assert_eq!(
        with(&[("log.roll.hours", "2"), ("log.roll.ms", "1000")])
            .unwrap()
            .log_roll_ms,
        1000
    );
    assert_eq!(
        with(&[("log.flush.scheduler.interval.ms", "9")])
            .unwrap()
            .log_flush_interval_ms,
        9
    );
    assert_eq!(
        with(&[
            ("log.flush.scheduler.interval.ms", "9"),
            ("log.flush.interval.ms", "3")
        ])
        .unwrap()
        .log_flush_interval_ms,
        3
    );
}

#[test]
fn broker_log_keys_map_to_topic_keys() {
    let config = with(&[
        ("log.segment.bytes", "1000"),
        ("log.roll.ms", "2000"),
        ("log.index.size.max.bytes", "4096"),
        ("log.index.interval.bytes", "100"),
        ("log.retention.ms", "3000"),
        ("log.retention.bytes", "4000"),
        ("log.segment.delete.delay.ms", "5"),
        ("log.cleanup.policy", "compact,delete"),
        ("log.cleaner.min.cleanable.ratio", "0.25"),
        ("log.cleaner.delete.retention.ms", "6"),
        ("log.cleaner.min.compaction.lag.ms", "7"),
        ("message.max.bytes", "5000"),
        ("log.message.timestamp.type", "LogAppendTime"),
        ("log.flush.interval.messages", "9223372036854775807"),
        ("log.flush.interval.ms", "8"),
    ])
    .unwrap();
    let expected = LogConfig::from_pairs([
        ("segment.bytes", "1000"),
        ("segment.ms", "2000"),
        ("segment.index.bytes", "4096"),
        ("index.interval.bytes", "100"),
        ("retention.ms", "3000"),
        ("retention.bytes", "4000"),
        ("file.delete.delay.ms", "5"),
        ("cleanup.policy", "compact,delete"),
        ("min.cleanable.dirty.ratio", "0.25"),
        ("delete.retention.ms", "6"),
        ("min.compaction.lag.ms", "7"),
        ("max.message.bytes", "5000"),
        ("message.timestamp.type", "LogAppendTime"),
        ("flush.messages", "9223372036854775807"),
        ("flush.ms", "8"),
    ])
    .unwrap();
    assert_eq!(config.default_log_config(), expected);
    // Every topic key the storage engine knows has a broker synonym, and every synonym is a
    // key the broker reads.
    for key in gregor_log::config::LOG_CONFIG_KEYS {
        let synonyms = log_config_synonyms(key);
        assert!(!synonyms.is_empty(), "{key} has no broker synonym");
        for s in synonyms {
            assert!(BROKER_CONFIG_KEYS.contains(s), "{s}");
        }
    }
    assert!(log_config_synonyms("compression.type").is_empty());
}

#[test]
fn other_keys_parse() {
    let config = with(&[
        ("node.id", "7"),
        ("num.partitions", "3"),
        ("default.replication.factor", "2"),
        ("auto.create.topics.enable", "FALSE"),
        ("socket.request.max.bytes", "1024"),
        ("offsets.topic.num.partitions", "5"),
        ("log.retention.check.interval.ms", "10"),
        ("num.network.threads", "1"),
        ("num.io.threads", "2"),
        ("log.dirs", " /a , /b"),
    ])
    .unwrap();
    assert_eq!(config.node_id, 7);
    assert_eq!(config.num_partitions, 3);
    assert_eq!(config.default_replication_factor, 2);
    assert!(!config.auto_create_topics_enable);
    assert_eq!(config.socket_request_max_bytes, 1024);
    assert_eq!(config.group.offsets_topic_num_partitions, 5);
    assert_eq!(config.log_retention_check_interval_ms, 10);
    assert_eq!((config.num_network_threads, config.num_io_threads), (1, 2));
    assert_eq!(
        config.log_dirs,
        vec![PathBuf::from("/a"), PathBuf::from("/b")]
    );
    assert_eq!(config.static_configs.len(), 10);
    assert_eq!(config.static_configs["node.id"], "7");
    // log.dir is the fallback; log.dirs wins over it.
    assert_eq!(
        with(&[("log.dir", "/x")]).unwrap().log_dirs,
        vec![PathBuf::from("/x")]
    );
    assert_eq!(
        with(&[("log.dir", "/x"), ("log.dirs", "/y")])
            .unwrap()
            .log_dirs,
        vec![PathBuf::from("/y")]
    );
}

#[test]
fn bad_values_name_the_key_value_and_expectation() {
    for (key, value) in [
        ("node.id", "abc"),
        ("node.id", "-1"),
        ("num.partitions", "0"),
        ("num.partitions", "99999999999"),
        ("default.replication.factor", "40000"),
        ("auto.create.topics.enable", "yes"),
        ("log.retention.ms", "forever"),
        ("log.retention.hours", "1.5"),
        ("log.retention.bytes", "-2"),
        ("log.segment.bytes", "10"),
        ("log.roll.hours", "0"),
        ("log.roll.ms", "0"),
        ("log.cleanup.policy", "shred"),
        ("log.cleaner.min.cleanable.ratio", "2"),
        ("log.flush.interval.messages", "0"),
        ("log.message.timestamp.type", "logappendtime"),
        ("message.max.bytes", "-1"),
        ("socket.request.max.bytes", "0"),
        ("log.index.size.max.bytes", "4"),
        ("log.dirs", "/a,,/b"),
        ("log.dirs", ""),
        ("listeners", "PLAINTEXT://127.0.0.1:99999"),
        ("listener.security.protocol.map", "PLAINTEXT:TLS"),
        ("process.roles", "worker"),
        ("controller.quorum.voters", "localhost:9093"),
    ] {
        let err = with(&[(key, value)]).unwrap_err();
        let text = err.to_string();
        assert_eq!(err.key(), Some(key), "{text}");
        assert!(
            text.contains(key) && text.contains(value) && text.contains("expected"),
            "{key}={value}: {text}"
        );
    }
    let err = with(&[("node.id", "abc")]).unwrap_err().to_string();
    assert_eq!(
        err,
        "invalid value \"abc\" for configuration node.id: expected an integer from 0 to 2147483647"
    );
}

#[test]
fn unknown_keys_are_ignored_and_reported_once() {
    let text = "node.id=2\nzookeeper.connect=localhost:2181\nsocket.send.buffer.bytes=102400\n\
                zookeeper.connect=other\n";
    let overrides = vec![("made.up".to_string(), "1".to_string())];
    let (config, ignored) = BrokerConfig::from_properties(text, &overrides).unwrap();
    assert_eq!(config.node_id, 2);
    assert_eq!(
        ignored,
        vec!["zookeeper.connect", "socket.send.buffer.bytes", "made.up"]
    );
    // Topic-level keys are not broker keys, in Kafka too.
    let (_, ignored) = BrokerConfig::from_properties("retention.ms=1\n", &[]).unwrap();
    assert_eq!(ignored, vec!["retention.ms"]);
}

#[test]
fn overrides_win_over_the_file_and_later_lines_over_earlier() {
    let text = "node.id=2\nnode.id=3\nnum.partitions=4\n";
    assert_eq!(parse(text).unwrap().node_id, 3);
    let overrides = vec![("node.id".to_string(), " 9 ".to_string())];
    let (config, _) = BrokerConfig::from_properties(text, &overrides).unwrap();
    assert_eq!((config.node_id, config.num_partitions), (9, 4));
    assert_eq!(config.static_configs["node.id"], "9");
}

#[test]
fn properties_syntax_with_continuations() {
    let text = "# Kafka style\n\
                ! another comment\n\
                \n\
                log.dirs = /data/a,\\\n\
                \x20          /data/b\n\
                num.partitions: 6\n\
                node.id 4\n";
    let config = parse(text).unwrap();
    assert_eq!(
        config.log_dirs,
        vec![PathBuf::from("/data/a"), PathBuf::from("/data/b")]
    );
    assert_eq!((config.num_partitions, config.node_id), (6, 4));
    let err = parse("node.id=1\nlisteners=\\u00ZZ\n").unwrap_err();
    assert_eq!(err.key(), None);
    assert!(err.to_string().starts_with("line 2:"), "{err}");
}

#[test]
fn listeners_port_zero_ipv6_and_all_interfaces() {
    let config = with(&[(
        "listeners",
        "PLAINTEXT://127.0.0.1:0,V6://[::1]:0,OTHER://localhost:9093",
    )]);
    // V6 and OTHER have no security protocol in the default map.
    let err = config.unwrap_err();
    assert_eq!(err.key(), Some("listener.security.protocol.map"));
    assert!(err.to_string().contains("V6:PLAINTEXT"), "{err}");

    let config = with(&[
        (
            "listeners",
            "PLAINTEXT://127.0.0.1:0,V6://[::1]:0,OTHER://localhost:9093",
        ),
        (
            "listener.security.protocol.map",
            "PLAINTEXT:PLAINTEXT,v6:plaintext,OTHER:PLAINTEXT",
        ),
    ])
    .unwrap();
    assert_eq!(
        config.listeners,
        vec![
            listener("PLAINTEXT", "127.0.0.1", 0),
            listener("V6", "::1", 0),
            listener("OTHER", "localhost", 9093),
        ]
    );
    assert_eq!(config.advertised_listeners, config.listeners);
    assert_eq!(config.listeners[1].address(), "[::1]:0");

    // An empty host binds every interface and advertises the host name, as in Kafka.
    let config = with(&[("listeners", "PLAINTEXT://:9092")]).unwrap();
    assert_eq!(
        config.listeners,
        vec![listener("PLAINTEXT", "0.0.0.0", 9092)]
    );
    let advertised = &config.advertised_listeners[0];
    assert!(!advertised.host.is_empty() && advertised.host != "0.0.0.0");
    assert_eq!(advertised.port, 9092);
}

#[test]
fn advertised_listeners_must_be_routable_and_defined() {
    // 0.0.0.0 is fine to bind but not to advertise, whether inherited or explicit.
    for overrides in [
        vec![("listeners", "PLAINTEXT://0.0.0.0:9092")],
        vec![
            ("listeners", "PLAINTEXT://0.0.0.0:9092"),
            ("advertised.listeners", "PLAINTEXT://0.0.0.0:9092"),
        ],
    ] {
        let err = with(&overrides).unwrap_err();
        assert_eq!(err.key(), Some("advertised.listeners"));
        assert!(err.to_string().contains("0.0.0.0"), "{err}");
    }
    let config = with(&[
        ("listeners", "PLAINTEXT://0.0.0.0:9092"),
        ("advertised.listeners", "PLAINTEXT://broker.example:19092"),
    ])
    .unwrap();
    assert_eq!(config.listeners[0].host, "0.0.0.0");
    assert_eq!(
        config.advertised_listeners,
        vec![listener("PLAINTEXT", "broker.example", 19092)]
    );
    let err = with(&[("advertised.listeners", "EXTERNAL://h:1")]).unwrap_err();
    assert_eq!(err.key(), Some("advertised.listeners"));
    let err = with(&[("listeners", "A://:1,B://:1")]).unwrap_err();
    assert!(err.to_string().contains("same port"), "{err}");
    // Port 0 may repeat: each gets its own free port.
    with(&[
        ("listeners", "PLAINTEXT://127.0.0.1:0,B://127.0.0.1:0"),
        (
            "listener.security.protocol.map",
            "PLAINTEXT:PLAINTEXT,B:PLAINTEXT",
        ),
    ])
    .unwrap();
}

#[test]
fn tls_and_sasl_listeners_are_not_supported_yet() {
    for listeners in ["SSL://127.0.0.1:9093", "SASL_PLAINTEXT://127.0.0.1:9094"] {
        let err = with(&[("listeners", listeners)]).unwrap_err();
        assert!(matches!(err, ConfigError::Unsupported { .. }), "{err}");
        assert!(err.to_string().contains("not supported yet"), "{err}");
    }
    let err = with(&[
        ("listeners", "CLIENT://127.0.0.1:9093"),
        ("listener.security.protocol.map", "CLIENT:SASL_SSL"),
    ])
    .unwrap_err();
    assert!(err.to_string().contains("SASL_SSL"), "{err}");
}

#[test]
fn cluster_settings_are_read_and_checked() {
    let three = "1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097";
    let config = with(&[
        ("node.id", "2"),
        ("controller.quorum.voters", three),
        (
            "listeners",
            "PLAINTEXT://127.0.0.1:9094,CONTROLLER://127.0.0.1:9095",
        ),
        ("controller.listener.names", "CONTROLLER"),
        ("min.insync.replicas", "2"),
        ("replica.lag.time.max.ms", "5000"),
        ("unclean.leader.election.enable", "true"),
        ("broker.session.timeout.ms", "3000"),
    ])
    .unwrap();
    let cluster = &config.cluster;
    assert_eq!(cluster.voters.len(), 3);
    assert_eq!(cluster.voters[&3], "127.0.0.1:9097");
    assert!(cluster.roles.broker && cluster.roles.controller);
    assert_eq!(cluster.min_insync_replicas, 2);
    assert_eq!(cluster.replica_lag_time_max_ms, 5000);
    assert!(cluster.unclean_leader_election_enable);
    assert_eq!(cluster.broker_session_timeout_ms, 3000);
    assert_eq!(config.controller_listeners[0].port, 9095);

    let broker_only = with(&[
        ("node.id", "4"),
        ("process.roles", "broker"),
        ("controller.quorum.voters", three),
    ])
    .unwrap();
    assert!(broker_only.cluster.roles.broker && !broker_only.cluster.roles.controller);

    for (overrides, key) in [
        (
            vec![("process.roles", "broker")],
            "controller.quorum.voters",
        ),
        (vec![("process.roles", "observer")], "process.roles"),
        (
            vec![("controller.quorum.voters", three)],
            "controller.listener.names",
        ),
        (
            vec![("controller.quorum.voters", "2@localhost:9093")],
            "controller.quorum.voters",
        ),
        (
            vec![("controller.quorum.voters", "1@localhost")],
            "controller.quorum.voters",
        ),
        (
            vec![("controller.quorum.voters", "1@a:1,1@b:2")],
            "controller.quorum.voters",
        ),
        (
            vec![("inter.broker.listener.name", "INTERNAL")],
            "inter.broker.listener.name",
        ),
        (vec![("min.insync.replicas", "0")], "min.insync.replicas"),
    ] {
        let err = with(&overrides).unwrap_err();
        assert_eq!(err.key(), Some(key), "{overrides:?}: {err}");
    }
    for servers in ["a:9093,b:9093", "other:9093"] {
        let err = with(&[("controller.quorum.bootstrap.servers", servers)]).unwrap_err();
        assert!(matches!(err, ConfigError::Unsupported { .. }), "{err}");
        assert!(
            err.to_string().contains("controller.quorum.voters"),
            "{err}"
        );
    }
    for roles in ["broker,controller", "controller, broker", ""] {
        with(&[("process.roles", roles)]).unwrap();
    }
}

#[test]
fn kafka_combined_mode_server_properties_work_unchanged() {
    // The shape of Kafka 4.0's config/server.properties.
    let text = "process.roles=broker,controller\n\
                node.id=1\n\
                controller.quorum.bootstrap.servers=localhost:9093\n\
                listeners=PLAINTEXT://:9092,CONTROLLER://:9093\n\
                inter.broker.listener.name=PLAINTEXT\n\
                advertised.listeners=PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093\n\
                controller.listener.names=CONTROLLER\n\
                listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,\
                SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL\n\
                num.network.threads=3\n\
                num.io.threads=8\n\
                log.dirs=/tmp/kraft-combined-logs\n\
                num.partitions=1\n\
                offsets.topic.replication.factor=1\n\
                log.retention.hours=168\n\
                log.segment.bytes=1073741824\n\
                log.retention.check.interval.ms=300000\n";
    let (config, ignored) = BrokerConfig::from_properties(text, &[]).unwrap();
    assert_eq!(
        config.listeners,
        vec![listener("PLAINTEXT", "0.0.0.0", 9092)]
    );
    assert_eq!(
        config.advertised_listeners,
        vec![listener("PLAINTEXT", "localhost", 9092)]
    );
    assert_eq!(
        config.controller_listeners,
        vec![listener("CONTROLLER", "0.0.0.0", 9093)]
    );
    assert_eq!(
        config.log_dirs,
        vec![PathBuf::from("/tmp/kraft-combined-logs")]
    );
    assert!(ignored.is_empty(), "{ignored:?}");
    assert_eq!(
        config.cluster.inter_broker_listener_name.as_deref(),
        Some("PLAINTEXT")
    );
    assert_eq!(config.cluster.offsets_topic_replication_factor, 1);
    // Kafka 3.x's form names the voters instead.
    let voters = text.replace(
        "controller.quorum.bootstrap.servers=localhost:9093",
        "controller.quorum.voters=1@localhost:9093",
    );
    parse(&voters).unwrap();
}

#[test]
fn group_keys_take_kafka_defaults_and_bounds() {
    let config = parse("").unwrap();
    assert_eq!(config.group, GroupConfig::default());
    assert_eq!(config.group.initial_rebalance_delay_ms, 3000);
    assert_eq!(config.group.offsets_retention_ms, 7 * 24 * 60 * 60 * 1000);
    let config = parse(
        "group.consumer.heartbeat.interval.ms=500\n\
         group.consumer.min.heartbeat.interval.ms=500\n\
         offsets.retention.minutes=1\n\
         group.coordinator.rebalance.protocols=classic",
    )
    .unwrap();
    assert_eq!(config.group.consumer_heartbeat_interval_ms, 500);
    assert_eq!(config.group.offsets_retention_ms, 60_000);
    assert!(!config.group.consumer_protocol_enabled);
    // Below its min. bound, as Kafka refuses at startup.
    let err =
        BrokerConfig::from_properties("group.consumer.heartbeat.interval.ms=500", &[]).unwrap_err();
    assert_eq!(err.key(), Some("group.consumer.heartbeat.interval.ms"));
    let err = BrokerConfig::from_properties("group.consumer.assignors=sticky", &[]).unwrap_err();
    assert_eq!(err.key(), Some("group.consumer.assignors"));
    let err = BrokerConfig::from_properties(
        "group.min.session.timeout.ms=10000\ngroup.max.session.timeout.ms=5000",
        &[],
    )
    .unwrap_err();
    assert_eq!(err.key(), Some("group.min.session.timeout.ms"));
}

#[test]
fn transaction_keys_take_kafka_defaults_and_bounds() {
    let config = parse("").unwrap();
    assert_eq!(config.transaction, TransactionConfig::default());
    assert_eq!(
        config.transaction.transactional_id_expiration_ms,
        604_800_000
    );
    assert_eq!(config.transaction.max_timeout_ms, 900_000);
    assert_eq!(config.transaction.log_num_partitions, 50);
    assert_eq!(config.transaction.log_replication_factor, 3);
    assert_eq!(config.transaction.log_min_isr, 2);
    assert_eq!(config.transaction.log_segment_bytes, 104_857_600);
    assert_eq!(config.transaction.abort_timed_out_interval_ms, 10_000);
    assert_eq!(config.transaction.remove_expired_interval_ms, 3_600_000);
    let config = parse(
        "transaction.state.log.replication.factor=1\n\
         transaction.state.log.min.isr=1\n\
         transaction.state.log.num.partitions=5\n\
         transaction.max.timeout.ms=60000\n\
         transactional.id.expiration.ms=1000\n\
         transaction.abort.timed.out.transaction.cleanup.interval.ms=100\n\
         transaction.remove.expired.transaction.cleanup.interval.ms=200\n\
         transaction.state.log.segment.bytes=1048576",
    )
    .unwrap();
    let t = &config.transaction;
    assert_eq!(
        (
            t.log_replication_factor,
            t.log_min_isr,
            t.log_num_partitions
        ),
        (1, 1, 5)
    );
    assert_eq!(
        (t.max_timeout_ms, t.transactional_id_expiration_ms),
        (60_000, 1000)
    );
    assert_eq!(
        (t.abort_timed_out_interval_ms, t.remove_expired_interval_ms),
        (100, 200)
    );
    assert_eq!(t.log_segment_bytes, 1 << 20);
    for bad in [
        "transaction.state.log.replication.factor=0",
        "transaction.state.log.replication.factor=40000",
        "transaction.state.log.num.partitions=0",
        "transaction.state.log.min.isr=0",
        "transaction.max.timeout.ms=0",
        "transactional.id.expiration.ms=-1",
        "transaction.abort.timed.out.transaction.cleanup.interval.ms=0",
        "transaction.state.log.segment.bytes=x",
    ] {
        let err = BrokerConfig::from_properties(bad, &[]).unwrap_err();
        assert_eq!(err.key(), Some(bad.split('=').next().unwrap()), "{bad}");
    }
}

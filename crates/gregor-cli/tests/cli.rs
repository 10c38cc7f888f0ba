//! The `gregor` binary's command line, run as a user or script would run it: configuration
//! problems must be one clear error and exit code 1, before anything binds.

use std::process::{Command, Output};

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
fn help_lists_the_broker_command() {
    let output = gregor(&["--help"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("broker"), "{stdout}");

    let output = gregor(&["broker", "--help"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("--config") && stdout.contains("--override"),
        "{stdout}"
    );
}

#[test]
fn bad_value_names_the_key_and_exits_1() {
    for args in [
        &["broker", "--override", "node.id=abc"][..],
        &["broker", "--override=node.id=abc"][..],
        &[
            "broker",
            "--override",
            "num.partitions=1",
            "--override",
            "node.id=abc",
        ][..],
    ] {
        let output = gregor(args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let err = stderr(&output);
        assert!(
            err.contains("error: ") && err.contains("node.id") && err.contains("abc"),
            "{err}"
        );
    }
}

#[test]
fn bad_value_in_config_file_exits_1_and_override_wins() {
    let dir = std::env::temp_dir().join(format!("gregor-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("server.properties");
    std::fs::write(&file, "# test\nlog.retention.ms=soon\n").unwrap();
    let path = file.to_str().unwrap();

    let output = gregor(&["broker", "--config", path]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("log.retention.ms") && err.contains("soon"),
        "{err}"
    );

    // The override replaces the bad file value; the next problem reported is the override's.
    let output = gregor(&[
        "broker",
        "--config",
        path,
        "--override",
        "log.retention.ms=1000",
        "--override",
        "listeners=SSL://127.0.0.1:9093",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        !err.contains("soon") && err.contains("SSL") && err.contains("not supported"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_config_file_exits_1() {
    let output = gregor(&[
        "broker",
        "--config",
        "/nonexistent/gregor/server.properties",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("error: cannot read config file /nonexistent/gregor/server.properties"),
        "{err}"
    );
}

#[test]
fn malformed_override_exits_1() {
    let output = gregor(&["broker", "--override", "node.id"]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("key=value") && err.contains("node.id"),
        "{err}"
    );
}

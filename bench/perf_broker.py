"""What the benchmarks (broker_perf.py, txn_perf.py) share: the release `gregor` binary, a
`gregor broker` on a free port, and producing without giving up on a full client queue."""

import os
import re
import subprocess
import threading

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def release_binary():
    """Builds target/release/gregor (cargo build --release -p gregor-cli) and returns its path."""
    subprocess.run(["cargo", "build", "-q", "--release", "-p", "gregor-cli"], cwd=REPO, check=True)
    return os.path.join(REPO, "target", "release", "gregor")


def start_broker(binary, data, overrides=()):
    """Starts `binary broker` on 127.0.0.1, a free port, with its log dirs in `data` and the
    given `key=value` overrides; returns (process, bootstrap address) once it listens."""
    args = [binary, "broker", "--override", "listeners=PLAINTEXT://127.0.0.1:0", "--override", "log.dirs=" + data]
    for item in overrides:
        args += ["--override", item]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        m = re.search(r"listening on PLAINTEXT://([^ ]+):(\d+)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            return proc, "%s:%s" % m.groups()
    raise SystemExit("broker did not start")


def produce(producer, topic, value, **kwargs):
    """producer.produce, waiting (polling delivery reports) while the client's queue is full."""
    while True:
        try:
            return producer.produce(topic, value, **kwargs)
        except BufferError:
            producer.poll(0.01)

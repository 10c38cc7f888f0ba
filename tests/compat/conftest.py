"""Shared fixtures for the compatibility suite: a real `gregor broker` process on a free port."""

import os
import re
import signal
import subprocess
import threading

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
READY = re.compile(r"ready: listening on PLAINTEXT://([^ ]+):(\d+)")


@pytest.fixture(scope="session")
def gregor_binary():
    """Builds the `gregor` binary once per test session and returns its path."""
    subprocess.run(["cargo", "build", "-q", "-p", "gregor-cli"], cwd=REPO, check=True)
    return os.path.join(REPO, "target", "debug", "gregor")


class Broker:
    """A `gregor broker` child process with its own data directory."""

    def __init__(self, binary, data_dir, overrides=()):
        self.binary = binary
        self.data_dir = str(data_dir)
        self.overrides = list(overrides)
        self.proc = None
        self.log = []
        self.bootstrap = None

    def start(self, timeout=30):
        args = [self.binary, "broker",
                "--override", "listeners=PLAINTEXT://127.0.0.1:0",
                "--override", "log.dirs=" + self.data_dir]
        for item in self.overrides:
            args += ["--override", item]
        self.proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        ready = threading.Event()

        def pump():
            for line in self.proc.stderr:
                self.log.append(line)
                match = READY.search(line)
                if match and not ready.is_set():
                    self.bootstrap = "%s:%s" % (match.group(1), match.group(2))
                    ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(timeout):
            self.kill()
            raise RuntimeError("broker did not become ready:\n" + "".join(self.log))
        return self

    def stop(self, timeout=30):
        """SIGTERM and wait: the broker must shut down cleanly with exit code 0."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "broker_overrides(*items): start the `broker` fixture with these `--override key=value` settings")


@pytest.fixture
def broker(gregor_binary, tmp_path, request):
    """A running single-node broker; stopped (SIGTERM) after the test.

    A test or module marked `@pytest.mark.broker_overrides("key=value", ...)` (module-wide through
    `pytestmark`) gets a broker started with those `--override`s; the test's own marker comes last,
    so it wins over the module's."""
    overrides = []
    for marker in reversed(list(request.node.iter_markers("broker_overrides"))):
        overrides += marker.args
    b = Broker(gregor_binary, tmp_path / "data", overrides).start()
    yield b
    if b.proc.poll() is None:
        b.stop()


@pytest.fixture
def cluster(gregor_binary, tmp_path):
    """A running three-node cluster (tests/compat/cluster.py), killed after the test."""
    from cluster import Cluster

    c = Cluster(gregor_binary, tmp_path, size=3).start()
    try:
        yield c
    finally:
        c.shutdown()

"""kcat (Debian's, on librdkafka 2.0.2, which parses ApiVersions strictly) lists metadata,
produces keyed records and consumes them back."""

import shutil
import subprocess

import pytest

pytestmark = pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed")


def kcat(broker, *args, stdin=None):
    return subprocess.run(["kcat", "-b", broker.bootstrap, *args], input=stdin, text=True,
                          capture_output=True, timeout=30, check=True)


def test_kcat_produces_consumes_and_lists(broker):
    kcat(broker, "-P", "-t", "kc", "-K", ":", stdin="a:1\nb:2\n:3\n")
    out = kcat(broker, "-C", "-t", "kc", "-e", "-f", "%k=%s@%o\n").stdout
    assert out.splitlines() == ["a=1@0", "b=2@1", "=3@2"]
    listing = kcat(broker, "-L").stdout
    assert 'topic "kc" with 1 partitions' in listing and "(controller)" in listing

"""kafka-python reads the record batches gregor-protocol writes, for every codec.

Runs `cargo run -p gregor-protocol --example emit_batches` to encode the records described in
crates/gregor-protocol/tests/fixtures/expected.txt once per codec, then checks each batch with
kafka-python's DefaultRecordBatch (CRC, header fields, every record) through
crates/gregor-protocol/tests/fixtures/generate.py. The opposite direction (we read what
kafka-python writes) is crates/gregor-protocol/tests/interop.rs.

Needs: pip install kafka-python python-snappy lz4 zstandard
"""

import importlib.util
import os
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(REPO, "crates", "gregor-protocol", "tests", "fixtures")

pytest.importorskip("kafka")
for module in ("snappy", "lz4.frame", "zstandard"):
    pytest.importorskip(module, reason="kafka-python needs %s for its codec" % module)


def load_generate():
    spec = importlib.util.spec_from_file_location("generate", os.path.join(FIXTURES, "generate.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_kafka_python_reads_gregor_batches(tmp_path):
    subprocess.run(
        ["cargo", "run", "-q", "-p", "gregor-protocol", "--example", "emit_batches", "--",
         str(tmp_path)],
        cwd=REPO, check=True)
    generate = load_generate()
    for name in generate.CODECS:
        assert (tmp_path / ("gregor_%s.bin" % name)).exists()
    assert generate.verify(str(tmp_path)) == []

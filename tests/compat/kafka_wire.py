"""Hand-encoded Kafka requests over a raw socket, for what no installed client lets a test do on
purpose: produce a batch with a chosen producer id / epoch / sequence, ask for a coordinator by
key type, or send a group request with a wrong member id or generation. Shared by
test_groups_protocol_errors.py (which adds the group requests) and the exactly-once suites.
Fixed, non-flexible versions (request header v1), the ones librdkafka also sends: ApiVersions
v0, Produce v3, InitProducerId v1, FindCoordinator v2.

Record batches (magic v2, with the producer fields) are built with kafka-python's
`DefaultRecordBatchBuilder`."""

import socket
import struct

# API keys.
PRODUCE, OFFSET_COMMIT, OFFSET_FETCH, FIND_COORDINATOR = 0, 8, 9, 10
JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP = 11, 12, 13, 14
API_VERSIONS, INIT_PRODUCER_ID = 18, 22

# Kafka error codes the raw-protocol tests look for.
NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
COORDINATOR_NOT_AVAILABLE = 15
NOT_COORDINATOR = 16
ILLEGAL_GENERATION = 22
INVALID_GROUP_ID = 24
UNKNOWN_MEMBER_ID = 25
INVALID_SESSION_TIMEOUT = 26
REBALANCE_IN_PROGRESS = 27
OUT_OF_ORDER_SEQUENCE_NUMBER = 45
DUPLICATE_SEQUENCE_NUMBER = 46
INVALID_PRODUCER_EPOCH = 47
INVALID_TXN_STATE = 48
MEMBER_ID_REQUIRED = 79
PRODUCER_FENCED = 90


def i8(v):
    return struct.pack(">b", v)


def i16(v):
    return struct.pack(">h", v)


def i32(v):
    return struct.pack(">i", v)


def i64(v):
    return struct.pack(">q", v)


def string(s):
    if s is None:
        return i16(-1)
    b = s.encode()
    return i16(len(b)) + b


def blob(b):
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def array(items, encode):
    if items is None:
        return i32(-1)
    return i32(len(items)) + b"".join(encode(x) for x in items)


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return value

    def i8(self):
        return self.take(">b")

    def i16(self):
        return self.take(">h")

    def i32(self):
        return self.take(">i")

    def i64(self):
        return self.take(">q")

    def raw(self, n):
        """The next `n` bytes (None if `n` is negative: a null)."""
        if n < 0:
            return None
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def string(self):
        b = self.raw(self.i16())
        return None if b is None else b.decode()

    def blob(self):
        return self.raw(self.i32())

    def array(self, decode):
        n = self.i32()
        return None if n < 0 else [decode(self) for _ in range(n)]

    def done(self):
        assert self.pos == len(self.data), "%d bytes left over" % (len(self.data) - self.pos)


def record_batch(values, producer_id=-1, producer_epoch=-1, base_sequence=-1, transactional=False):
    """A magic-v2 record batch of `values` (bytes) with the given producer fields."""
    from kafka.record.default_records import DefaultRecordBatchBuilder

    builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=transactional,
                                        producer_id=producer_id, producer_epoch=producer_epoch,
                                        base_sequence=base_sequence, batch_size=1 << 20)
    for offset, value in enumerate(values):
        assert builder.append(offset, timestamp=None, key=None, value=value, headers=[]) is not None
    return bytes(builder.build())


class Connection:
    """One TCP connection to a broker (the first address of `bootstrap`); `call` sends a request
    (header v1, with `client_id`) and returns a Reader over the response body (after the
    correlation id)."""

    def __init__(self, bootstrap, client_id="gregor-eos-test", timeout=60):
        host, port = bootstrap.split(",")[0].rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.client_id = client_id
        self.correlation = 0

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def call(self, api_key, version, body):
        self.correlation += 1
        frame = i16(api_key) + i16(version) + i32(self.correlation) + string(self.client_id) + body
        self.sock.sendall(i32(len(frame)) + frame)
        size = struct.unpack(">i", self._read(4))[0]
        reader = Reader(self._read(size))
        assert reader.i32() == self.correlation
        return reader

    def _read(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("broker closed the connection")
            data += chunk
        return data

    # --- requests -------------------------------------------------------------------------

    def api_versions(self):
        """{api_key: (min, max)} (ApiVersions v0)."""
        r = self.call(API_VERSIONS, 0, b"")
        error = r.i16()
        assert error == NONE, error
        entries = r.array(lambda a: (a.i16(), a.i16(), a.i16()))
        return {key: (lo, hi) for key, lo, hi in entries}

    def init_producer_id(self, transactional_id=None, timeout_ms=60000):
        """InitProducerId v1: {'error', 'producer_id', 'producer_epoch'}."""
        r = self.call(INIT_PRODUCER_ID, 1, string(transactional_id) + i32(timeout_ms))
        out = dict(throttle=r.i32(), error=r.i16(), producer_id=r.i64(), producer_epoch=r.i16())
        r.done()
        return out

    def find_coordinator(self, key, key_type=0):
        """FindCoordinator v2 (key_type 0 = group, 1 = transaction)."""
        r = self.call(FIND_COORDINATOR, 2, string(key) + i8(key_type))
        out = dict(throttle=r.i32(), error=r.i16(), message=r.string(), node=r.i32(), host=r.string(),
                   port=r.i32())
        r.done()
        return out

    def produce(self, topic, partition, batch, acks=-1, transactional_id=None, timeout_ms=30000):
        """Produce v3 of one batch to one partition: {'error', 'base_offset'}."""
        body = (string(transactional_id) + i16(acks) + i32(timeout_ms)
                + array([topic], lambda t: string(t) + array([partition], lambda p: i32(p) + blob(batch))))
        r = self.call(PRODUCE, 3, body)
        topics = r.array(lambda t: (t.string(), t.array(
            lambda p: dict(partition=p.i32(), error=p.i16(), base_offset=p.i64(), log_append_time=p.i64()))))
        r.i32()  # throttle time
        r.done()
        assert topics[0][0] == topic and topics[0][1][0]["partition"] == partition, topics
        return topics[0][1][0]

"""Many connections and pipelining, over raw sockets: a thousand idle connections stay open
while hundreds of others pipeline requests, every response comes back in request order, and
garbage on one connection closes only that one."""

import resource
import socket
import struct


def api_versions_request(correlation_id):
    # ApiVersions v0: header v1 (api key, version, correlation id, client id), empty body.
    client_id = b"conn-test"
    body = struct.pack(">hhih", 18, 0, correlation_id, len(client_id)) + client_id
    return struct.pack(">i", len(body)) + body


def read_response(sock):
    header = b""
    while len(header) < 4:
        chunk = sock.recv(4 - len(header))
        if not chunk:
            return None
        header += chunk
    size = struct.unpack(">i", header)[0]
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    correlation_id, error_code = struct.unpack(">ih", data[:6])
    return correlation_id, error_code


def connect(bootstrap):
    host, port = bootstrap.split(":")
    sock = socket.create_connection((host, int(port)), timeout=20)
    return sock


def test_thousand_idle_connections_and_pipelined_requests(broker):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2600:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    idle = [connect(broker.bootstrap) for _ in range(1000)]
    active = [connect(broker.bootstrap) for _ in range(300)]
    try:
        # Five requests in flight per connection, as max.in.flight.requests.per.connection=5.
        for i, sock in enumerate(active):
            sock.sendall(b"".join(api_versions_request(i * 10 + k) for k in range(5)))
        for i, sock in enumerate(active):
            got = [read_response(sock) for _ in range(5)]
            assert got == [(i * 10 + k, 0) for k in range(5)]
        # Garbage closes that connection only.
        bad = connect(broker.bootstrap)
        bad.sendall(struct.pack(">i", 12) + b"\xff" * 12)
        assert read_response(bad) is None
        bad.close()
        for sock in (idle[0], idle[-1], active[7]):
            sock.sendall(api_versions_request(99))
            assert read_response(sock) == (99, 0)
    finally:
        for sock in idle + active:
            sock.close()

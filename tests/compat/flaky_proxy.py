"""A TCP proxy between Kafka clients and one broker that loses responses on purpose.

It forwards every request, and reads the Kafka framing (4-byte size, then the request header)
to remember each request's API key by correlation id. When a Produce response comes back it
counts it; every `cut_every`-th one is *not* forwarded: the proxy closes both sides of that
connection instead. The broker has written that batch (and maybe others in flight on the same
connection), the client never hears so, and must retry: exactly the case an idempotent producer
has to survive without duplicates.

For clients to keep going through the proxy after their first Metadata request, the broker must
advertise the proxy's address (`advertised.listeners=PLAINTEXT://<proxy address>`): bind the
proxy first (its port is known at construction), start the broker with that override, then
`start(broker_address)`."""

import socket
import struct
import threading

PRODUCE = 0


def _read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _read_frame(sock):
    header = _read_exact(sock, 4)
    (size,) = struct.unpack(">i", header)
    return header + _read_exact(sock, size)


class FlakyProxy:
    def __init__(self, cut_every=0, max_cuts=None, api_key=PRODUCE):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.address = "127.0.0.1:%d" % self.listener.getsockname()[1]
        self.upstream = None
        self.api_key = api_key
        self.cut_every = cut_every
        self.max_cuts = max_cuts
        self.cutting = True
        self.lock = threading.Lock()
        self.connections = 0  # client connections accepted
        self.responses = 0  # responses to `api_key` seen (forwarded or not)
        self.cuts = 0  # connections closed instead of forwarding such a response
        self.in_flight_at_cut = []  # how many requests the client had outstanding at each cut
        self._sockets = set()
        self._stopped = False

    def start(self, upstream):
        """Begins accepting; `upstream` is the broker's real "host:port"."""
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self):
        self._stopped = True
        try:
            self.listener.close()
        except OSError:
            pass
        with self.lock:
            socks = list(self._sockets)
        for s in socks:
            _close(s)

    def stats(self):
        with self.lock:
            return dict(connections=self.connections, responses=self.responses, cuts=self.cuts)

    def _accept(self):
        while not self._stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=30)
                server.settimeout(None)
            except OSError:
                _close(client)
                continue
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.connections += 1
                self._sockets.update((client, server))
            in_flight = {}
            threading.Thread(target=self._requests, args=(client, server, in_flight), daemon=True).start()
            threading.Thread(target=self._responses, args=(client, server, in_flight), daemon=True).start()

    def _requests(self, client, server, in_flight):
        try:
            while True:
                frame = _read_frame(client)
                api_key, _version, correlation = struct.unpack_from(">hhi", frame, 4)
                in_flight[correlation] = api_key
                server.sendall(frame)
        except (OSError, ConnectionError, struct.error):
            self._drop(client, server)

    def _responses(self, client, server, in_flight):
        try:
            while True:
                frame = _read_frame(server)
                (correlation,) = struct.unpack_from(">i", frame, 4)
                api_key = in_flight.pop(correlation, None)
                if api_key == self.api_key:
                    with self.lock:
                        self.responses += 1
                        cut = (self.cutting and self.cut_every > 0 and self.responses % self.cut_every == 0
                               and (self.max_cuts is None or self.cuts < self.max_cuts))
                        if cut:
                            self.cuts += 1
                            self.in_flight_at_cut.append(len(in_flight) + 1)
                    if cut:
                        self._drop(client, server)
                        return
                client.sendall(frame)
        except (OSError, ConnectionError, struct.error):
            self._drop(client, server)

    def _drop(self, client, server):
        for s in (client, server):
            _close(s)
        with self.lock:
            self._sockets.discard(client)
            self._sockets.discard(server)


def _close(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass

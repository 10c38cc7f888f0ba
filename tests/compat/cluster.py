"""A local Gregor cluster for tests: N `gregor broker` processes on 127.0.0.1, each a broker and
a controller voter (Kafka's combined mode), with its own ports and data directory.

Nodes can be SIGKILLed and restarted; cluster state is read back through the Admin API
(confluent-kafka), as an operator would."""

import os
import re
import signal
import socket
import subprocess
import threading

from waits import wait_for

READY = re.compile(r"ready: listening on PLAINTEXT://([^ ]+):(\d+)")


def free_ports(count):
    """Ports the OS says are free now (the voters' addresses must be known before any node starts)."""
    sockets = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


class Node:
    """One `gregor broker` process of the cluster."""

    def __init__(self, binary, node_id, data_dir, settings):
        self.binary = binary
        self.node_id = node_id
        self.data_dir = str(data_dir)
        self.settings = settings
        self.proc = None
        self.log = []
        self.ready = threading.Event()

    def launch(self):
        """Starts the process; `wait_ready` waits until it serves (it needs a quorum first)."""
        args = [self.binary, "broker"]
        for key, value in self.settings.items():
            args += ["--override", "%s=%s" % (key, value)]
        self.ready.clear()
        self.log = []
        self.proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        proc = self.proc

        def pump():
            for line in proc.stderr:
                self.log.append(line)
                if READY.search(line):
                    self.ready.set()

        threading.Thread(target=pump, daemon=True).start()
        return self

    def wait_ready(self, timeout=60):
        if not self.ready.wait(timeout):
            raise RuntimeError("node %d did not become ready:\n%s" % (self.node_id, "".join(self.log[-40:])))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL: no controlled shutdown, no clean log close."""
        if self.alive():
            self.proc.kill()
            self.proc.wait()

    def stop(self, timeout=60):
        """SIGTERM: controlled shutdown, then a clean exit (code 0)."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(timeout)
        return None


class Cluster:
    """`size` combined broker+controller nodes; `overrides` apply to every node."""

    def __init__(self, binary, root, size=3, overrides=None):
        client_ports = free_ports(size)
        controller_ports = free_ports(size)
        voters = ",".join("%d@127.0.0.1:%d" % (i + 1, controller_ports[i]) for i in range(size))
        self.nodes = {}
        for i in range(size):
            node_id = i + 1
            settings = {
                "node.id": node_id,
                "process.roles": "broker,controller",
                "controller.quorum.voters": voters,
                "listeners": "PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d"
                % (client_ports[i], controller_ports[i]),
                "controller.listener.names": "CONTROLLER",
                "inter.broker.listener.name": "PLAINTEXT",
                "log.dirs": os.path.join(str(root), "node-%d" % node_id),
                # Fast failure detection for tests; Kafka's defaults are 9000/2000/1000/30000.
                "broker.session.timeout.ms": 3000,
                "broker.heartbeat.interval.ms": 500,
                "controller.quorum.election.timeout.ms": 500,
                "replica.lag.time.max.ms": 5000,
                "replica.fetch.backoff.ms": 200,
                "offsets.topic.num.partitions": 6,
                "group.initial.rebalance.delay.ms": 0,
            }
            settings.update(overrides or {})
            self.nodes[node_id] = Node(binary, node_id, settings["log.dirs"], settings)
        self.bootstrap = ",".join("127.0.0.1:%d" % p for p in client_ports)

    def add_broker(self, node_id):
        """A broker-only node (`process.roles=broker`): it follows the metadata log as an observer
        of the voters, on a controller listener of its own."""
        client, controller = free_ports(2)
        settings = dict(self.nodes[1].settings)
        root = os.path.dirname(settings["log.dirs"])
        settings.update({
            "node.id": node_id,
            "process.roles": "broker",
            "listeners": "PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d" % (client, controller),
            "log.dirs": os.path.join(root, "node-%d" % node_id),
        })
        node = Node(self.nodes[1].binary, node_id, settings["log.dirs"], settings)
        self.nodes[node_id] = node
        self.bootstrap += ",127.0.0.1:%d" % client
        return node

    def start(self, timeout=60):
        for node in self.nodes.values():
            node.launch()
        for node in self.nodes.values():
            node.wait_ready(timeout)
        return self

    def restart(self, node_id, timeout=60):
        node = self.nodes[node_id]
        node.kill()
        node.launch()
        node.wait_ready(timeout)

    def shutdown(self):
        for node in self.nodes.values():
            node.kill()

    def admin(self):
        from confluent_kafka.admin import AdminClient

        return AdminClient({"bootstrap.servers": self.bootstrap, "socket.timeout.ms": 5000})

    def partitions(self, topic, admin=None):
        """{partition: (leader, replicas, isr)} as the cluster reports it."""
        admin = admin or self.admin()
        metadata = admin.list_topics(topic, timeout=10)
        info = metadata.topics[topic]
        if info.error is not None:
            raise RuntimeError(str(info.error))
        return {p.id: (p.leader, list(p.replicas), list(p.isrs)) for p in info.partitions.values()}

    def controller(self, admin=None):
        admin = admin or self.admin()
        return admin.describe_cluster(request_timeout=10).result(timeout=15).controller.id

    def wait_for(self, condition, what, timeout=60, interval=0.2):
        """Polls `condition()` (exceptions count as not yet) until it is truthy (waits.py); on
        timeout the error shows the end of every node's log."""
        return wait_for(condition, what, timeout, interval, details=self.log_tails)

    def log_tails(self):
        return "\n".join(
            "--- node %d (%s):\n%s" % (n, "up" if node.alive() else "down", "".join(node.log[-25:]))
            for n, node in self.nodes.items())


def create(cluster, name, partitions, replication_factor=3, configs=None):
    """Creates a topic with confluent-kafka's AdminClient and waits until every partition is
    led with a full ISR."""
    from confluent_kafka.admin import NewTopic

    admin = cluster.admin()
    topic = NewTopic(name, partitions, replication_factor, config=configs or {})
    admin.create_topics([topic])[name].result(timeout=30)
    cluster.wait_for(lambda: full_isr(cluster, name, replication_factor),
                     "every partition of %s led with a full ISR" % name)


def full_isr(cluster, topic, size=3):
    return all(leader >= 0 and len(isr) == size for leader, _, isr in cluster.partitions(topic).values())

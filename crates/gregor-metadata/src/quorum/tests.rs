//! Quorum tests: one voter, three voters with failover and catch-up, an observer, torn log
//! tails and garbage frames. The controller's logic is not needed: records are written with
//! [`MetadataQuorum::append`], and controller requests are only checked to be routed.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

use super::transport::{self, RpcHandler, RpcRequest, RpcResponse, Transport};
use super::*;
use crate::records::TopicRecord;

const WAIT: Duration = Duration::from_secs(10);

fn topic(n: u128) -> MetadataRecord {
    MetadataRecord::Topic(TopicRecord {
        name: format!("t{n}"),
        topic_id: Uuid::from_u128(n),
    })
}

fn config(id: i32, dir: &Path) -> QuorumConfig {
    let mut c = QuorumConfig::single_node(id, dir.to_path_buf());
    c.election_timeout_ms = 300;
    c.heartbeat_interval_ms = 50;
    c
}

async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn topics(q: &MetadataQuorum) -> Vec<String> {
    q.image().borrow().topic_ids.keys().cloned().collect()
}

async fn wait_topics(q: &MetadataQuorum, n: usize) {
    wait_until(&format!("{n} topics"), || topics(q).len() == n).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_voter_appends_and_restores_from_log() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let q = MetadataQuorum::start(config(1, dir.path())).await.unwrap();
    wait_until("leadership", || q.leader() == Some(1)).await;
    eprintln!("1-voter first start to leader: {:?}", started.elapsed());
    for n in 1..=3 {
        let index = q.append(vec![topic(n)]).await.unwrap();
        assert_eq!(
            q.image().borrow().offset,
            index,
            "applied before append returns"
        );
    }
    assert_eq!(topics(&q), ["t1", "t2", "t3"]);
    q.shutdown().await;

    let started = Instant::now();
    let q = MetadataQuorum::start(config(1, dir.path())).await.unwrap();
    wait_until("leadership after restart", || q.leader() == Some(1)).await;
    eprintln!("1-voter restart to leader: {:?}", started.elapsed());
    wait_topics(&q, 3).await;
    q.append(vec![topic(4)]).await.unwrap();
    assert_eq!(topics(&q).len(), 4);
    q.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_voter_restores_from_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(1, dir.path());
    c.snapshot_every_entries = 5;
    let q = MetadataQuorum::start(c).await.unwrap();
    wait_until("leadership", || q.leader() == Some(1)).await;
    for n in 1..=23 {
        q.append(vec![topic(n)]).await.unwrap();
    }
    let has_snapshot = || {
        std::fs::read_dir(dir.path()).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("snapshot-")
        })
    };
    wait_until("a snapshot", has_snapshot).await;
    wait_until("a purge", || dir.path().join("purged.json").exists()).await;
    q.shutdown().await;

    let mut c = config(1, dir.path());
    c.snapshot_every_entries = 5;
    let q = MetadataQuorum::start(c).await.unwrap();
    wait_topics(&q, 23).await;
    wait_until("leadership", || q.leader() == Some(1)).await;
    q.append(vec![topic(24)]).await.unwrap();
    assert_eq!(topics(&q).len(), 24);
    q.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_and_corrupt_log_tails_are_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let q = MetadataQuorum::start(config(1, dir.path())).await.unwrap();
    wait_until("leadership", || q.leader() == Some(1)).await;
    for n in 1..=3 {
        q.append(vec![topic(n)]).await.unwrap();
    }
    q.shutdown().await;
    let log = dir.path().join("raft-log.bin");
    let good_len = std::fs::metadata(&log).unwrap().len();

    // A partial record at the end (crash mid-append): dropped, nothing else lost.
    let mut bytes = std::fs::read(&log).unwrap();
    bytes.extend_from_slice(&[0, 0, 0, 100, 1, 2, 3, 4, b'{', b'"']);
    std::fs::write(&log, &bytes).unwrap();
    let q = MetadataQuorum::start(config(1, dir.path())).await.unwrap();
    wait_topics(&q, 3).await;
    wait_until("leadership", || q.leader() == Some(1)).await;
    q.shutdown().await;
    assert!(std::fs::metadata(&log).unwrap().len() >= good_len);

    // A flipped byte in the last record: that record fails its CRC and is cut off.
    let mut bytes = std::fs::read(&log).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0xff;
    std::fs::write(&log, &bytes).unwrap();
    let q = MetadataQuorum::start(config(1, dir.path())).await.unwrap();
    wait_until("leadership", || q.leader() == Some(1)).await;
    // Only the corrupt last record is lost (a topic, or the blank entry of the restart); the
    // append is applied after everything before it, so the image then holds all survivors.
    q.append(vec![topic(9)]).await.unwrap();
    let now = topics(&q);
    assert!(now.contains(&"t9".to_string()) && now.len() >= 3, "{now:?}");
    q.shutdown().await;
}

async fn bind() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    (l, addr)
}

fn voter_config(
    id: i32,
    dir: &Path,
    voters: &BTreeMap<i32, String>,
    listener: TcpListener,
) -> QuorumConfig {
    let mut c = config(id, dir);
    c.voters = voters.clone();
    c.advertised = voters.get(&id).cloned();
    c.listener = Some(listener);
    // Small, so that a restarted node has to be sent a snapshot.
    c.snapshot_every_entries = 5;
    c
}

fn agreed_leader(nodes: &[&MetadataQuorum]) -> Option<i32> {
    let first = nodes[0].leader()?;
    nodes
        .iter()
        .all(|q| q.leader() == Some(first))
        .then_some(first)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_replicate_fail_over_and_catch_up() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut listeners = Vec::new();
    let mut voters = BTreeMap::new();
    for id in 1..=3 {
        let (l, addr) = bind().await;
        voters.insert(id, addr);
        listeners.push(l);
    }
    let started = Instant::now();
    let mut nodes: BTreeMap<i32, MetadataQuorum> = BTreeMap::new();
    for (i, l) in listeners.into_iter().enumerate() {
        let id = i as i32 + 1;
        let q = MetadataQuorum::start(voter_config(id, dirs[i].path(), &voters, l))
            .await
            .unwrap();
        nodes.insert(id, q);
    }
    wait_until("an agreed leader", || {
        agreed_leader(&nodes.values().collect::<Vec<_>>()).is_some()
    })
    .await;
    eprintln!("3-voter first election: {:?}", started.elapsed());
    let leader = nodes.values().next().unwrap().leader().unwrap();

    nodes[&leader].append(vec![topic(1)]).await.unwrap();
    nodes[&leader]
        .append(vec![topic(2), topic(3)])
        .await
        .unwrap();
    for q in nodes.values() {
        wait_topics(q, 3).await;
    }
    // Appends only on the leader; controller requests are routed to it from anywhere and
    // decided by the real controller there.
    let follower = *nodes.keys().find(|id| **id != leader).unwrap();
    assert!(matches!(
        nodes[&follower].append(vec![topic(99)]).await,
        Err(QuorumError::NotController { leader: Some(l) }) if l == leader
    ));
    let register = ControllerRequest::RegisterBroker {
        broker_id: 7,
        incarnation_id: uuid::Uuid::from_u128(7),
        endpoints: Vec::new(),
        rack: None,
    };
    let epoch = match nodes[&follower]
        .request(register, Duration::from_secs(5))
        .await
    {
        Ok(ControllerResponse::Registered(Ok(epoch))) => epoch,
        other => panic!("expected a registration through the leader, got {other:?}"),
    };
    let unknown = ControllerRequest::AllocateProducerIds {
        broker_id: 1,
        broker_epoch: 0,
    };
    assert!(matches!(
        nodes[&leader]
            .request(unknown, Duration::from_secs(5))
            .await,
        Ok(ControllerResponse::ProducerIds(Err(_)))
    ));
    for q in nodes.values() {
        let mut image = q.image();
        let registered = image.wait_for(|i| i.brokers.get(&7).is_some_and(|b| b.epoch == epoch));
        tokio::time::timeout(Duration::from_secs(5), registered)
            .await
            .expect("the registration reaches every node")
            .unwrap();
    }

    // The leader goes away: the other two elect a new one, which accepts appends.
    let started = Instant::now();
    nodes.remove(&leader).unwrap().shutdown().await;
    wait_until("a new leader", || {
        agreed_leader(&nodes.values().collect::<Vec<_>>()).is_some_and(|l| l != leader)
    })
    .await;
    eprintln!("3-voter failover election: {:?}", started.elapsed());
    let new_leader = nodes.values().next().unwrap().leader().unwrap();
    for n in 4..=20 {
        nodes[&new_leader].append(vec![topic(n)]).await.unwrap();
    }
    for q in nodes.values() {
        wait_topics(q, 20).await;
    }

    // The old leader restarts from its directory and catches up.
    let l = TcpListener::bind(voters[&leader].as_str()).await.unwrap();
    let dir = dirs[leader as usize - 1].path();
    let q = MetadataQuorum::start(voter_config(leader, dir, &voters, l))
        .await
        .unwrap();
    wait_topics(&q, 20).await;
    let image = q.image().borrow().clone();
    let reference = nodes[&new_leader].image().borrow().clone();
    assert_eq!(image.topic_ids, reference.topic_ids);
    nodes.insert(leader, q);
    for (_, q) in nodes {
        q.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observer_joins_and_applies_the_log() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (l1, a1) = bind().await;
    let (l2, a2) = bind().await;
    let voters = BTreeMap::from([(1, a1)]);
    let voter = MetadataQuorum::start(voter_config(1, d1.path(), &voters, l1))
        .await
        .unwrap();
    wait_until("leadership", || voter.leader() == Some(1)).await;
    voter.append(vec![topic(1)]).await.unwrap();

    let mut c = config(2, d2.path());
    c.role = NodeRole::Observer;
    c.voters = voters.clone();
    c.listener = Some(l2);
    c.advertised = Some(a2);
    let observer = MetadataQuorum::start(c).await.unwrap();
    wait_topics(&observer, 1).await;
    voter.append(vec![topic(2)]).await.unwrap();
    wait_topics(&observer, 2).await;
    assert_eq!(observer.leader(), Some(1));
    observer.shutdown().await;
    voter.shutdown().await;
}

struct Echo;

impl RpcHandler for Echo {
    async fn handle(&self, _request: RpcRequest) -> RpcResponse {
        RpcResponse::Join(Ok(()))
    }
}

#[tokio::test]
async fn transport_drops_oversized_and_garbage_frames_and_keeps_serving() {
    let (listener, addr) = bind().await;
    let server = transport::serve(listener, Arc::new(Echo));

    for bad in [
        (transport::MAX_FRAME + 1).to_be_bytes().to_vec(),
        [&5u32.to_be_bytes()[..], b"hello"].concat(),
    ] {
        let mut raw = TcpStream::connect(&addr).await.unwrap();
        raw.write_all(&bad).await.unwrap();
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(WAIT, raw.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        assert_eq!(n, 0, "the bad connection is closed");
    }

    let transport = Transport::default();
    let join = RpcRequest::Join {
        node_id: 7,
        addr: "x:1".into(),
    };
    let response = transport.call(&addr, &join, WAIT).await.unwrap();
    assert!(matches!(response, RpcResponse::Join(Ok(()))));
    server.abort();
}

mod log_store_tests {
    use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
    use openraft::{CommittedLeaderId, EntryPayload, RaftLogReader, Vote};

    use super::super::log_store::LogStore;
    use super::super::types::{LogEntry, LogId};
    use super::topic;

    fn entry(index: u64) -> LogEntry {
        LogEntry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(vec![topic(index as u128)]),
        }
    }

    async fn indexes(store: &mut LogStore) -> Vec<u64> {
        let entries = store.try_get_log_entries(0..).await.unwrap();
        entries.iter().map(|e| e.log_id.index).collect()
    }

    #[tokio::test]
    async fn truncate_purge_vote_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(dir.path()).unwrap();
        store.blocking_append((1..=10).map(entry)).await.unwrap();
        store.save_vote(&Vote::new_committed(1, 1)).await.unwrap();
        store.truncate(entry(8).log_id).await.unwrap();
        store.purge(entry(3).log_id).await.unwrap();
        assert_eq!(indexes(&mut store).await, [4, 5, 6, 7]);
        drop(store);

        let mut store = LogStore::open(dir.path()).unwrap();
        assert_eq!(indexes(&mut store).await, [4, 5, 6, 7]);
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id.map(|l| l.index), Some(3));
        assert_eq!(state.last_log_id.map(|l| l.index), Some(7));
        assert_eq!(
            store.read_vote().await.unwrap(),
            Some(Vote::new_committed(1, 1))
        );
        store.blocking_append((8..=9).map(entry)).await.unwrap();
        drop(store);

        let mut store = LogStore::open(dir.path()).unwrap();
        assert_eq!(indexes(&mut store).await, [4, 5, 6, 7, 8, 9]);
        // Purging everything leaves an empty log whose last id is the purge point.
        store.purge(entry(9).log_id).await.unwrap();
        drop(store);
        let mut store = LogStore::open(dir.path()).unwrap();
        assert!(indexes(&mut store).await.is_empty());
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id.map(|l| l.index), Some(9));
    }

    #[tokio::test]
    async fn torn_tail_is_cut_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(dir.path()).unwrap();
        store.blocking_append((1..=3).map(entry)).await.unwrap();
        drop(store);
        let log = dir.path().join("raft-log.bin");
        let good = std::fs::metadata(&log).unwrap().len();
        let mut bytes = std::fs::read(&log).unwrap();
        bytes.extend_from_slice(&[0, 0, 0, 9, 0xde, 0xad]);
        std::fs::write(&log, &bytes).unwrap();

        let mut store = LogStore::open(dir.path()).unwrap();
        assert_eq!(std::fs::metadata(&log).unwrap().len(), good);
        assert_eq!(indexes(&mut store).await, [1, 2, 3]);
        store.blocking_append([entry(4)]).await.unwrap();
        drop(store);
        let mut store = LogStore::open(dir.path()).unwrap();
        assert_eq!(indexes(&mut store).await, [1, 2, 3, 4]);
    }
}

//! `meta.properties`: the identity file Kafka keeps in every log directory.
//!
//! It ties a directory to a cluster and a node (`cluster.id`, `node.id`, `version=1` as KRaft
//! writes it), so that a directory from another node or cluster is refused instead of silently
//! served. The first start writes the cluster id (22 characters of URL-safe base64, as
//! Kafka's `Uuid.toString`) to every directory: a random one for a node that is its own
//! quorum, and for nodes of a multi-voter quorum one derived from `controller.quorum.voters`,
//! so every node of the cluster agrees without Kafka's separate `kafka-storage format` step.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::error::BrokerError;
use gregor_protocol::ids;

const FILE: &str = "meta.properties";

fn read(dir: &Path) -> Result<Option<BTreeMap<String, String>>, BrokerError> {
    let path = dir.join(FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(BrokerError::MetaProperties(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    let entries = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    Ok(Some(entries))
}

/// The cluster id nodes of the quorum `voters` (`id@host:port` entries) agree on: Kafka's
/// base64 form of 16 bytes of a hash of the sorted voter list.
pub fn cluster_id_for_voters(voters: &BTreeMap<i32, String>) -> String {
    let text: String = voters
        .iter()
        .map(|(id, addr)| format!("{id}@{addr},"))
        .collect();
    // FNV-1a over the text, widened to 128 bits by hashing twice with different offsets.
    let fnv = |seed: u64| {
        text.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    let high = fnv(0xcbf2_9ce4_8422_2325);
    let low = fnv(high ^ 0x9e37_79b9_7f4a_7c15);
    ids::to_text(uuid::Uuid::from_u64_pair(high, low))
}

/// Checks or writes `meta.properties` in every log directory and returns the cluster id;
/// `fresh` is the id to write where none exists yet.
pub fn ensure(
    dirs: &[std::path::PathBuf],
    node_id: i32,
    fresh: String,
) -> Result<String, BrokerError> {
    let mut cluster_id = None;
    for dir in dirs {
        if let Some(props) = read(dir)? {
            if let Some(node) = props.get("node.id") {
                if node.parse::<i32>().ok() != Some(node_id) {
                    return Err(BrokerError::MetaProperties(format!(
                        "{} belongs to node.id {node}, but this broker is node.id {node_id}",
                        dir.join(FILE).display()
                    )));
                }
            }
            match (props.get("cluster.id"), &cluster_id) {
                (Some(found), Some(known)) if found != known => {
                    return Err(BrokerError::MetaProperties(format!(
                        "{} has cluster.id {found}, another log directory has {known}",
                        dir.join(FILE).display()
                    )));
                }
                (Some(found), None) => cluster_id = Some(found.clone()),
                _ => {}
            }
        }
    }
    let cluster_id = cluster_id.unwrap_or(fresh);
    for dir in dirs {
        fs::create_dir_all(dir).map_err(|e| {
            BrokerError::MetaProperties(format!("cannot create {}: {e}", dir.display()))
        })?;
        let text = format!(
            "#\n#{}\nversion=1\ncluster.id={cluster_id}\nnode.id={node_id}\n",
            "Written by Gregor"
        );
        let path = dir.join(FILE);
        if read(dir)?.is_none() {
            fs::write(&path, text).map_err(|e| {
                BrokerError::MetaProperties(format!("cannot write {}: {e}", path.display()))
            })?;
        }
    }
    Ok(cluster_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_start_writes_and_later_starts_check() {
        let root = tempfile::tempdir().unwrap();
        let dirs = vec![root.path().join("a"), root.path().join("b")];
        let id = ensure(&dirs, 1, ids::to_text(ids::random_id())).unwrap();
        assert_eq!(id.len(), 22);
        assert_eq!(ensure(&dirs, 1, "other".into()).unwrap(), id);
        let text = fs::read_to_string(dirs[1].join(FILE)).unwrap();
        assert!(text.contains(&format!("cluster.id={id}\n")) && text.contains("node.id=1\n"));
        let err = ensure(&dirs, 2, id.clone()).unwrap_err().to_string();
        assert!(err.contains("node.id 1"), "{err}");
    }

    #[test]
    fn voters_derive_one_cluster_id() {
        let voters: BTreeMap<i32, String> = [
            (1, "127.0.0.1:9093".to_string()),
            (2, "127.0.0.1:9095".to_string()),
        ]
        .into();
        let id = cluster_id_for_voters(&voters);
        assert_eq!(id.len(), 22);
        assert_eq!(id, cluster_id_for_voters(&voters.clone()));
        let other: BTreeMap<i32, String> = [(1, "127.0.0.1:9093".to_string())].into();
        assert_ne!(id, cluster_id_for_voters(&other));
    }
}

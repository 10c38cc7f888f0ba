//! `meta.properties`: the identity file Kafka keeps in every log directory.
//!
//! It ties a directory to a cluster and a node (`cluster.id`, `node.id`, `version=1` as KRaft
//! writes it), so that a directory from another node or cluster is refused instead of silently
//! served. The first start generates the cluster id (22 characters of URL-safe base64, as
//! Kafka's `Uuid.toString`) and writes it to every directory.

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

/// Checks or writes `meta.properties` in every log directory and returns the cluster id.
pub fn ensure(dirs: &[std::path::PathBuf], node_id: i32) -> Result<String, BrokerError> {
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
    let cluster_id = cluster_id.unwrap_or_else(|| ids::to_text(ids::random_id()));
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
        let id = ensure(&dirs, 1).unwrap();
        assert_eq!(id.len(), 22);
        assert_eq!(ensure(&dirs, 1).unwrap(), id);
        let text = fs::read_to_string(dirs[1].join(FILE)).unwrap();
        assert!(text.contains(&format!("cluster.id={id}\n")) && text.contains("node.id=1\n"));
        let err = ensure(&dirs, 2).unwrap_err().to_string();
        assert!(err.contains("node.id 1"), "{err}");
    }
}

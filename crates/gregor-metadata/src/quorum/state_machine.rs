//! The replicated state machine ([`StateMachine`]): the [`MetadataImage`] built by applying
//! committed entries, published on a watch channel, and its snapshots.
//!
//! Each entry's records are applied in order at the entry's log index, so a controller
//! decision becomes visible all at once. Blank and membership entries only advance
//! `image.offset`. The new image is published once per applied batch, before openraft answers
//! the client write, so a caller that waited for its write sees it in [`MetadataImage`].
//!
//! Snapshots are the JSON of [`SnapshotFile`] (openraft's snapshot metadata + the image) in
//! `snapshot-<index>.json` (tmp + fsync + rename); the same bytes travel over the network when
//! a follower is too far behind. Only the newest snapshot file is kept. On start the newest
//! readable snapshot seeds the image and openraft replays the log after it.

use std::fs;
use std::io::{self, Cursor};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::storage::RaftStateMachine;
use openraft::{
    BasicNode, EntryPayload, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageIOError,
    StoredMembership,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::files::write_atomic;
use super::types::{LogEntry, LogId, RaftNodeId, StorageError, TypeConfig};
use crate::image::MetadataImage;

/// What a snapshot file (and a snapshot sent to a follower) contains.
#[derive(Debug, Serialize, Deserialize)]
pub struct SnapshotFile {
    /// openraft's metadata: last included log id and membership.
    pub meta: SnapshotMeta<RaftNodeId, BasicNode>,
    /// The image at `meta.last_log_id`.
    pub image: MetadataImage,
}

/// Applies committed entries to the metadata image and keeps its snapshots.
pub struct StateMachine {
    dir: PathBuf,
    image: Arc<MetadataImage>,
    last_applied: Option<LogId>,
    membership: StoredMembership<RaftNodeId, BasicNode>,
    publish: watch::Sender<Arc<MetadataImage>>,
}

/// Builds a snapshot of the image as it was when the builder was made.
pub struct SnapshotBuilder {
    dir: PathBuf,
    image: Arc<MetadataImage>,
    last_applied: Option<LogId>,
    membership: StoredMembership<RaftNodeId, BasicNode>,
}

impl StateMachine {
    /// Opens the state machine in `dir`, seeded from the newest readable snapshot, and
    /// publishes its image on `publish`.
    pub fn open(
        dir: &Path,
        publish: watch::Sender<Arc<MetadataImage>>,
    ) -> io::Result<StateMachine> {
        fs::create_dir_all(dir)?;
        let mut sm = StateMachine {
            dir: dir.to_path_buf(),
            image: Arc::new(MetadataImage::default()),
            last_applied: None,
            membership: StoredMembership::default(),
            publish,
        };
        if let Some((file, _)) = load_latest(dir)? {
            sm.last_applied = file.meta.last_log_id;
            sm.membership = file.meta.last_membership.clone();
            sm.image = Arc::new(file.image);
        }
        sm.publish.send_replace(sm.image.clone());
        Ok(sm)
    }
}

/// Snapshot files in `dir`, newest first.
fn snapshot_files(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some(index) = name
            .strip_prefix("snapshot-")
            .and_then(|n| n.strip_suffix(".json"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            files.push((index, path));
        }
    }
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    Ok(files)
}

/// The newest snapshot that parses, with its bytes; unreadable ones are skipped with a warning.
fn load_latest(dir: &Path) -> io::Result<Option<(SnapshotFile, Vec<u8>)>> {
    for (_, path) in snapshot_files(dir)? {
        match fs::read(&path).map(|b| (serde_json::from_slice::<SnapshotFile>(&b), b)) {
            Ok((Ok(file), bytes)) => return Ok(Some((file, bytes))),
            Ok((Err(e), _)) => {
                tracing::warn!(path = %path.display(), error = %e, "skipping corrupt snapshot")
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "skipping unreadable snapshot")
            }
        }
    }
    Ok(None)
}

/// Writes `bytes` as the snapshot at `index` and removes older snapshot files.
fn store_snapshot(dir: &Path, index: u64, bytes: &[u8]) -> io::Result<()> {
    write_atomic(&dir.join(format!("snapshot-{index:020}.json")), bytes, true)?;
    for (old, path) in snapshot_files(dir)? {
        if old < index {
            if let Err(e) = fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "could not remove old snapshot");
            }
        }
    }
    Ok(())
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let index = self.last_applied.map(|l| l.index).unwrap_or(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id: format!("{index}-{nanos}"),
        };
        let file = SnapshotFile {
            meta: meta.clone(),
            image: (*self.image).clone(),
        };
        let bytes = serde_json::to_vec(&file)
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        store_snapshot(&self.dir, index, &bytes).map_err(|e| {
            tracing::error!(error = %e, "could not write metadata snapshot");
            StorageIOError::write_snapshot(Some(meta.signature()), &e)
        })?;
        tracing::info!(index, bytes = bytes.len(), "metadata snapshot written");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembership<RaftNodeId, BasicNode>), StorageError> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<u64>, StorageError>
    where
        I: IntoIterator<Item = LogEntry> + Send,
        I::IntoIter: Send,
    {
        let mut image: Option<MetadataImage> = None;
        let mut replies = Vec::new();
        for entry in entries {
            let image = image.get_or_insert_with(|| (*self.image).clone());
            let index = entry.log_id.index;
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(records) => {
                    for record in &records {
                        image.apply(record, index);
                    }
                }
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), m);
                }
            }
            image.offset = index;
            self.last_applied = Some(entry.log_id);
            replies.push(index);
        }
        if let Some(image) = image {
            self.image = Arc::new(image);
            self.publish.send_replace(self.image.clone());
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            dir: self.dir.clone(),
            image: self.image.clone(),
            last_applied: self.last_applied,
            membership: self.membership.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<RaftNodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let bytes = snapshot.into_inner();
        let file: SnapshotFile = serde_json::from_slice(&bytes)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        let index = meta.last_log_id.map(|l| l.index).unwrap_or(0);
        store_snapshot(&self.dir, index, &bytes).map_err(|e| {
            tracing::error!(error = %e, "could not store received metadata snapshot");
            StorageIOError::write_snapshot(Some(meta.signature()), &e)
        })?;
        let mut image = file.image;
        image.offset = index;
        self.image = Arc::new(image);
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.publish.send_replace(self.image.clone());
        tracing::info!(index, "installed metadata snapshot from the leader");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let latest = load_latest(&self.dir).map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        Ok(latest.map(|(file, bytes)| Snapshot {
            meta: file.meta,
            snapshot: Box::new(Cursor::new(bytes)),
        }))
    }
}

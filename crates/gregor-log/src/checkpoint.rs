//! Kafka's checkpoint text files, written atomically.
//!
//! Both formats start with a version line (`0`) and an entry count, then one entry per line:
//! `topic partition offset` for the per-log-directory offset checkpoints
//! (`recovery-point-offset-checkpoint`, `log-start-offset-checkpoint`,
//! `cleaner-offset-checkpoint`), `epoch startOffset` for `leader-epoch-checkpoint`. A checkpoint
//! is written to `<name>.tmp`, fsynced, renamed over the old one, and the directory fsynced, so a
//! crash leaves either the old or the new file, never a torn one.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use crate::error::{IoContext, LogError, Result};
use crate::names::TopicPartition;

const VERSION: &str = "0";

/// Writes `lines` under the version and count header, atomically.
pub fn write_lines(path: &Path, lines: &[String]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut text = format!("{VERSION}\n{}\n", lines.len());
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    let write = || -> io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().at(path)
}

/// Reads the entry lines of a checkpoint; a missing file has none.
pub fn read_lines(path: &Path) -> Result<Vec<String>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).at(path),
    };
    let malformed = |why: &str| LogError::Io {
        path: path.to_path_buf(),
        source: io::Error::new(
            io::ErrorKind::InvalidData,
            format!("malformed checkpoint: {why}"),
        ),
    };
    let mut lines = text.lines();
    if lines.next() != Some(VERSION) {
        return Err(malformed("unknown version"));
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| malformed("bad entry count"))?;
    let entries: Vec<String> = lines.map(str::to_string).collect();
    if entries.len() != count {
        return Err(malformed("entry count does not match"));
    }
    Ok(entries)
}

/// A per-log-directory map of partition → offset.
pub fn read_offsets(path: &Path) -> Result<BTreeMap<TopicPartition, i64>> {
    let mut map = BTreeMap::new();
    for line in read_lines(path)? {
        let mut parts = line.split(' ');
        let parsed = (|| {
            let topic = parts.next()?;
            let partition = parts.next()?.parse().ok()?;
            let offset = parts.next()?.parse().ok()?;
            parts
                .next()
                .is_none()
                .then(|| (TopicPartition::new(topic, partition), offset))
        })();
        let (tp, offset) = parsed.ok_or_else(|| LogError::Io {
            path: path.to_path_buf(),
            source: io::Error::new(
                io::ErrorKind::InvalidData,
                format!("malformed checkpoint line {line:?}"),
            ),
        })?;
        map.insert(tp, offset);
    }
    Ok(map)
}

/// Writes a per-log-directory map of partition → offset.
pub fn write_offsets(path: &Path, offsets: &BTreeMap<TopicPartition, i64>) -> Result<()> {
    let lines: Vec<String> = offsets
        .iter()
        .map(|(tp, o)| format!("{} {} {o}", tp.topic, tp.partition))
        .collect();
    write_lines(path, &lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_checkpoint_has_kafkas_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recovery-point-offset-checkpoint");
        let mut offsets = BTreeMap::new();
        offsets.insert(TopicPartition::new("orders", 0), 42);
        offsets.insert(TopicPartition::new("my-topic", 3), 7);
        write_offsets(&path, &offsets).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "0\n2\nmy-topic 3 7\norders 0 42\n"
        );
        assert_eq!(read_offsets(&path).unwrap(), offsets);
        assert!(
            read_offsets(&dir.path().join("missing"))
                .unwrap()
                .is_empty()
        );
        fs::write(&path, "0\n3\nmy-topic 3 7\n").unwrap();
        assert!(read_offsets(&path).is_err());
    }
}

//! Topic metadata of a single-node cluster: names, partition counts and
//! config overrides, kept in `<first data dir>/kmon-topics.json` (written
//! to a temp file, synced, then renamed, so a crash never leaves half a
//! file). Topic names follow Kafka's rules.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{BrokerError, IoContext, Result};

pub const TOPICS_FILE: &str = "kmon-topics.json";
pub const MAX_TOPIC_NAME_LEN: usize = 249;
pub const MAX_PARTITIONS: u32 = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    pub partitions: u32,
    pub replication_factor: u32,
    /// Topic-level config overrides, Kafka names.
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TopicsFile {
    topics: BTreeMap<String, TopicMeta>,
}

#[derive(Debug)]
pub struct TopicStore {
    path: PathBuf,
    topics: BTreeMap<String, TopicMeta>,
}

/// Kafka's topic name rules: 1..=249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<()> {
    let invalid = |reason: &str| {
        Err(BrokerError::InvalidTopicName {
            name: name.into(),
            reason: reason.into(),
        })
    };
    if name.is_empty() {
        return invalid("a topic name cannot be empty");
    }
    if name == "." || name == ".." {
        return invalid("'.' and '..' are not allowed");
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return invalid(&format!(
            "{} characters, at most {MAX_TOPIC_NAME_LEN} are allowed",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return invalid(&format!(
            "character {bad:?} is not allowed; use only ASCII letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// Kafka refuses topics whose names differ only by '.' vs '_' (metric names
/// would collide).
fn metric_name(name: &str) -> String {
    name.replace('.', "_")
}

impl TopicStore {
    pub fn open(data_dir: &Path) -> Result<TopicStore> {
        let path = data_dir.join(TOPICS_FILE);
        let topics = match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice::<TopicsFile>(&bytes)
                    .map_err(|e| BrokerError::CorruptLogDir {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?
                    .topics
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e).storage(|| format!("reading {}", path.display())),
        };
        Ok(TopicStore { path, topics })
    }

    pub fn get(&self, name: &str) -> Option<&TopicMeta> {
        self.topics.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &TopicMeta)> {
        self.topics.iter()
    }

    /// Checks that `name` may be created (valid, not taken, no collision).
    pub fn check_new(&self, name: &str) -> Result<()> {
        validate_topic_name(name)?;
        if self.topics.contains_key(name) {
            return Err(BrokerError::TopicAlreadyExists(name.into()));
        }
        if let Some(other) = self
            .topics
            .keys()
            .find(|t| metric_name(t) == metric_name(name))
        {
            return Err(BrokerError::InvalidTopicName {
                name: name.into(),
                reason: format!(
                    "collides with existing topic '{other}' ('.' and '_' are treated alike in metric names)"
                ),
            });
        }
        Ok(())
    }

    pub fn insert(&mut self, name: &str, meta: TopicMeta) -> Result<()> {
        self.topics.insert(name.into(), meta);
        self.persist()
    }

    pub fn remove(&mut self, name: &str) -> Result<Option<TopicMeta>> {
        let removed = self.topics.remove(name);
        if removed.is_some() {
            self.persist()?;
        }
        Ok(removed)
    }

    fn persist(&self) -> Result<()> {
        let file = TopicsFile {
            topics: self.topics.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&file).expect("topics serialize");
        let tmp = self.path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            std::fs::write(&tmp, &bytes)?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            if let Some(dir) = self.path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().storage(|| format!("writing {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_topic_name_rules() {
        for ok in ["orders", "a.b_c-d", "X9", &"x".repeat(249)] {
            validate_topic_name(ok).unwrap();
        }
        for bad in [
            "",
            ".",
            "..",
            "has space",
            "ümlaut",
            "a/b",
            &"x".repeat(250),
        ] {
            assert!(validate_topic_name(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn store_persists_and_refuses_duplicates_and_collisions() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = TopicStore::open(dir.path()).unwrap();
        let meta = TopicMeta {
            partitions: 3,
            replication_factor: 1,
            configs: BTreeMap::new(),
        };
        store.check_new("a.b").unwrap();
        store.insert("a.b", meta.clone()).unwrap();
        assert!(matches!(
            store.check_new("a.b"),
            Err(BrokerError::TopicAlreadyExists(_))
        ));
        assert!(matches!(
            store.check_new("a_b"),
            Err(BrokerError::InvalidTopicName { .. })
        ));
        let reopened = TopicStore::open(dir.path()).unwrap();
        assert_eq!(reopened.get("a.b"), Some(&meta));
    }
}

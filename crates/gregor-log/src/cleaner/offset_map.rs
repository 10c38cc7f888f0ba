//! `OffsetMap`: key → latest offset over a log's dirty section.
//!
//! Keys are stored by a 128-bit digest (two SipHash-1-3 passes with fixed keys), as Kafka's
//! `SkimpyOffsetMap` stores an MD5 digest: memory per key is fixed whatever the key size. The
//! price is the same as Kafka's: if two keys ever shared a digest (about 2^-64 odds for a
//! billion keys), the older record of one would be dropped as if superseded by the other.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

/// Latest offset per key.
#[derive(Debug, Default)]
pub struct OffsetMap {
    map: HashMap<u128, i64>,
}

fn digest(key: &[u8]) -> u128 {
    // Fixed seeds: the digest must be the same for the map's whole lifetime, nothing more.
    let mut a =
        std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .build_hasher();
    a.write(key);
    let mut b =
        std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .build_hasher();
    b.write_u8(0x5a);
    b.write(key);
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

impl OffsetMap {
    /// Records `offset` for `key` if it is later than what is known.
    pub fn put(&mut self, key: &[u8], offset: i64) {
        let entry = self.map.entry(digest(key)).or_insert(offset);
        *entry = (*entry).max(offset);
    }

    /// The latest offset seen for `key`.
    pub fn get(&self, key: &[u8]) -> Option<i64> {
        self.map.get(&digest(key)).copied()
    }
}

//! Kafka's 128-bit ids (cluster ids, topic ids) and their text form: 22 characters of
//! URL-safe base64 without padding, as Kafka's `Uuid.toString` prints them.

use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

use uuid::Uuid;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A fresh random id. Kafka reserves the all-zero id (and ids whose text starts with `-`),
/// so those are never returned.
pub fn random_id() -> Uuid {
    loop {
        let mut bytes = [0u8; 16];
        for (i, chunk) in bytes.chunks_mut(8).enumerate() {
            // RandomState is seeded from the OS per process and per instance.
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            h.write_usize(i);
            chunk.copy_from_slice(&h.finish().to_be_bytes());
        }
        let id = Uuid::from_bytes(bytes);
        if !id.is_nil() && !to_text(id).starts_with('-') {
            return id;
        }
    }
}

/// Kafka's text form of an id.
pub fn to_text(id: Uuid) -> String {
    let mut out = String::with_capacity(22);
    let (mut acc, mut bits) = (0u32, 0);
    for b in id.as_bytes() {
        acc = (acc << 8) | u32::from(*b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(ALPHABET[((acc >> bits) & 63) as usize] as char);
        }
    }
    out.push(ALPHABET[((acc << (6 - bits)) & 63) as usize] as char);
    out
}

/// Parses Kafka's text form; `None` if it is not one.
pub fn from_text(text: &str) -> Option<Uuid> {
    if text.len() != 22 {
        return None;
    }
    let mut bytes = Vec::with_capacity(17);
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push((acc >> bits) as u8);
        }
    }
    bytes.truncate(16);
    Some(Uuid::from_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips_like_kafka() {
        // Kafka prints the id 0x00..01 as "AAAAAAAAAAAAAAAAAAAAAQ".
        let one = Uuid::from_u128(1);
        assert_eq!(to_text(one), "AAAAAAAAAAAAAAAAAAAAAQ");
        assert_eq!(from_text("AAAAAAAAAAAAAAAAAAAAAQ"), Some(one));
        for _ in 0..100 {
            let id = random_id();
            assert_eq!(from_text(&to_text(id)), Some(id));
        }
        assert_eq!(from_text("short"), None);
        assert_eq!(from_text("!!!!!!!!!!!!!!!!!!!!!!"), None);
    }
}

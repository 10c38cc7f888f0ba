//! The consumer's embedded protocol inside classic JoinGroup metadata
//! (`ConsumerProtocolSubscription`): the coordinator reads only the subscribed topic names,
//! to refuse OffsetDelete on a topic a live group still consumes.

use bytes::Buf;

/// The topic names of a `ConsumerProtocolSubscription` (any version: topics come first after
/// the version), or nothing if the bytes are not one.
pub fn subscription_topics(metadata: &[u8]) -> Vec<String> {
    let mut buf = metadata;
    if buf.remaining() < 6 {
        return Vec::new();
    }
    let _version = buf.get_i16();
    let count = buf.get_i32();
    let mut topics = Vec::new();
    for _ in 0..count.max(0) {
        if buf.remaining() < 2 {
            return Vec::new();
        }
        let len = buf.get_i16();
        if len < 0 || buf.remaining() < len as usize {
            return Vec::new();
        }
        match std::str::from_utf8(&buf[..len as usize]) {
            Ok(name) => topics.push(name.to_string()),
            Err(_) => return Vec::new(),
        }
        buf.advance(len as usize);
    }
    topics
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_topics_and_survives_garbage() {
        let mut bytes = vec![0, 1, 0, 0, 0, 2, 0, 1, b'a', 0, 2, b'b', b'c'];
        bytes.extend([0xff, 0xff, 0xff, 0xff]); // null user data
        assert_eq!(subscription_topics(&bytes), ["a", "bc"]);
        assert!(subscription_topics(&[0, 1, 0, 0, 0, 9, 0]).is_empty());
        assert!(subscription_topics(b"").is_empty());
    }
}

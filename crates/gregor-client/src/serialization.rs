//! Serializers and deserializers: how keys and values become bytes and back, with exactly
//! the encodings of Kafka's Java client so that a Java, Python or Go application reading the
//! same topic sees the same values.
//!
//! `ProducerRecord::serialized` and `ConsumerRecord::deserialize_key`/`deserialize_value`
//! apply them to records; implement the traits for your own formats.
//!
//! | Rust type | Kafka (Java) class | bytes |
//! |---|---|---|
//! | `String`, `str` | `StringSerializer` | UTF-8 |
//! | `Vec<u8>`, `Bytes`, `[u8]` | `ByteArraySerializer`, `BytesSerializer` | as is |
//! | `i16` | `ShortSerializer` | 2 bytes, big-endian |
//! | `i32` | `IntegerSerializer` | 4 bytes, big-endian |
//! | `i64` | `LongSerializer` | 8 bytes, big-endian |
//! | `f32` | `FloatSerializer` | IEEE 754 bits, big-endian |
//! | `f64` | `DoubleSerializer` | IEEE 754 bits, big-endian |
//! | `uuid::Uuid` | `UUIDSerializer` | the UUID's string form (`"xxxxxxxx-xxxx-…"`) in UTF-8 |
//! | [`Json<T>`] | (Kafka Connect's JSON without schemas) | `serde_json` text |
//!
//! [`Kafka`] implements both traits for every type in the table; your own formats (Avro,
//! Protobuf…) plug in by implementing [`Serializer`] and [`Deserializer`] for your type.
//!
//! ```
//! use gregor_client::serialization::{Deserializer, Kafka, Serializer};
//!
//! let bytes = Kafka.serialize("orders", &1i32).unwrap();
//! assert_eq!(&bytes[..], [0, 0, 0, 1]);
//! let back: i32 = Kafka.deserialize("orders", &bytes).unwrap();
//! assert_eq!(back, 1);
//! let err = <Kafka as Deserializer<i64>>::deserialize(&Kafka, "orders", &bytes).unwrap_err();
//! assert!(err.to_string().contains("8 bytes"));
//! ```

use std::marker::PhantomData;

use bytes::Bytes;
use uuid::Uuid;

/// Why a value could not be turned into bytes or back.
#[derive(Debug, thiserror::Error)]
pub enum SerializationError {
    /// The bytes have the wrong length for a fixed-size type (Java's "Size of data received
    /// by … is not N").
    #[error("size of data received is {actual} bytes, expected {expected} bytes")]
    Size {
        /// Bytes the type needs.
        expected: usize,
        /// Bytes received.
        actual: usize,
    },
    /// The bytes are not valid UTF-8 (strings, UUIDs).
    #[error("invalid UTF-8: {0}")]
    Utf8(#[from] std::str::Utf8Error),
    /// The text is not a UUID.
    #[error("invalid UUID: {0}")]
    Uuid(String),
    /// JSON encoding or decoding failed.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A user-defined serializer failed.
    #[error("{0}")]
    Custom(String),
}

/// Turns a `T` into the bytes of a record key or value.
pub trait Serializer<T: ?Sized> {
    /// Serializes `value` for a record of `topic` (the topic lets formats with schemas
    /// choose one per topic, as Kafka's interface allows).
    fn serialize(&self, topic: &str, value: &T) -> Result<Bytes, SerializationError>;
}

/// Turns the bytes of a record key or value back into a `T`.
pub trait Deserializer<T> {
    /// Deserializes `data` read from `topic`.
    fn deserialize(&self, topic: &str, data: &[u8]) -> Result<T, SerializationError>;
}

/// The Java client's built-in encodings (see the module table), for every type it covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Kafka;

fn fixed<const N: usize>(data: &[u8]) -> Result<[u8; N], SerializationError> {
    data.try_into().map_err(|_| SerializationError::Size {
        expected: N,
        actual: data.len(),
    })
}

macro_rules! big_endian {
    ($($ty:ty),*) => {$(
        impl Serializer<$ty> for Kafka {
            fn serialize(&self, _topic: &str, value: &$ty) -> Result<Bytes, SerializationError> {
                Ok(Bytes::copy_from_slice(&value.to_be_bytes()))
            }
        }
        impl Deserializer<$ty> for Kafka {
            fn deserialize(&self, _topic: &str, data: &[u8]) -> Result<$ty, SerializationError> {
                Ok(<$ty>::from_be_bytes(fixed(data)?))
            }
        }
    )*};
}

big_endian!(i16, i32, i64, f32, f64);

impl Serializer<str> for Kafka {
    fn serialize(&self, _topic: &str, value: &str) -> Result<Bytes, SerializationError> {
        Ok(Bytes::copy_from_slice(value.as_bytes()))
    }
}

impl Serializer<String> for Kafka {
    fn serialize(&self, _topic: &str, value: &String) -> Result<Bytes, SerializationError> {
        Ok(Bytes::copy_from_slice(value.as_bytes()))
    }
}

impl Deserializer<String> for Kafka {
    fn deserialize(&self, _topic: &str, data: &[u8]) -> Result<String, SerializationError> {
        Ok(std::str::from_utf8(data)?.to_string())
    }
}

impl Serializer<[u8]> for Kafka {
    fn serialize(&self, _topic: &str, value: &[u8]) -> Result<Bytes, SerializationError> {
        Ok(Bytes::copy_from_slice(value))
    }
}

impl Serializer<Vec<u8>> for Kafka {
    fn serialize(&self, _topic: &str, value: &Vec<u8>) -> Result<Bytes, SerializationError> {
        Ok(Bytes::copy_from_slice(value))
    }
}

impl Deserializer<Vec<u8>> for Kafka {
    fn deserialize(&self, _topic: &str, data: &[u8]) -> Result<Vec<u8>, SerializationError> {
        Ok(data.to_vec())
    }
}

impl Serializer<Bytes> for Kafka {
    fn serialize(&self, _topic: &str, value: &Bytes) -> Result<Bytes, SerializationError> {
        Ok(value.clone())
    }
}

impl Deserializer<Bytes> for Kafka {
    fn deserialize(&self, _topic: &str, data: &[u8]) -> Result<Bytes, SerializationError> {
        Ok(Bytes::copy_from_slice(data))
    }
}

impl Serializer<Uuid> for Kafka {
    fn serialize(&self, _topic: &str, value: &Uuid) -> Result<Bytes, SerializationError> {
        // Java's UUID.toString(): lower-case hyphenated.
        Ok(Bytes::from(value.hyphenated().to_string()))
    }
}

impl Deserializer<Uuid> for Kafka {
    fn deserialize(&self, _topic: &str, data: &[u8]) -> Result<Uuid, SerializationError> {
        let text = std::str::from_utf8(data)?;
        Uuid::try_parse(text).map_err(|e| SerializationError::Uuid(format!("{text:?}: {e}")))
    }
}

/// JSON through serde for any `T: Serialize` (and `DeserializeOwned` to read), e.g.
/// `Json::<Order>::new()`.
pub struct Json<T>(PhantomData<fn() -> T>);

impl<T> Json<T> {
    /// A JSON (de)serializer for `T`.
    pub fn new() -> Json<T> {
        Json(PhantomData)
    }
}

impl<T> Default for Json<T> {
    fn default() -> Json<T> {
        Json::new()
    }
}

impl<T> Clone for Json<T> {
    fn clone(&self) -> Json<T> {
        *self
    }
}

impl<T> Copy for Json<T> {}

impl<T> std::fmt::Debug for Json<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Json")
    }
}

impl<T: serde::Serialize> Serializer<T> for Json<T> {
    fn serialize(&self, _topic: &str, value: &T) -> Result<Bytes, SerializationError> {
        Ok(Bytes::from(serde_json::to_vec(value)?))
    }
}

impl<T: serde::de::DeserializeOwned> Deserializer<T> for Json<T> {
    fn deserialize(&self, _topic: &str, data: &[u8]) -> Result<T, SerializationError> {
        Ok(serde_json::from_slice(data)?)
    }
}

impl crate::producer::ProducerRecord {
    /// A record for `topic` whose key and value are encoded by the given serializers (`None`
    /// is a null key or value), so typed data goes through the producer like Java's
    /// `KafkaProducer<K, V>`.
    pub fn serialized<K: ?Sized, V: ?Sized>(
        topic: impl Into<String>,
        key: Option<&K>,
        value: Option<&V>,
        key_serializer: &impl Serializer<K>,
        value_serializer: &impl Serializer<V>,
    ) -> Result<crate::producer::ProducerRecord, SerializationError> {
        let topic = topic.into();
        let key = key
            .map(|k| key_serializer.serialize(&topic, k))
            .transpose()?;
        let value = value
            .map(|v| value_serializer.serialize(&topic, v))
            .transpose()?;
        Ok(crate::producer::ProducerRecord {
            topic,
            partition: None,
            key,
            value,
            headers: Vec::new(),
            timestamp: None,
        })
    }
}

impl crate::consumer::ConsumerRecord {
    /// The key decoded by `deserializer` (`None` for a null key).
    pub fn deserialize_key<T>(
        &self,
        deserializer: &impl Deserializer<T>,
    ) -> Result<Option<T>, SerializationError> {
        self.key
            .as_deref()
            .map(|k| deserializer.deserialize(&self.topic, k))
            .transpose()
    }

    /// The value decoded by `deserializer` (`None` for a null value, a tombstone).
    pub fn deserialize_value<T>(
        &self,
        deserializer: &impl Deserializer<T>,
    ) -> Result<Option<T>, SerializationError> {
        self.value
            .as_deref()
            .map(|v| deserializer.deserialize(&self.topic, v))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ser<T: ?Sized>(value: &T) -> Vec<u8>
    where
        Kafka: Serializer<T>,
    {
        Kafka.serialize("t", value).unwrap().to_vec()
    }

    fn de<T>(data: &[u8]) -> Result<T, SerializationError>
    where
        Kafka: Deserializer<T>,
    {
        Kafka.deserialize("t", data)
    }

    #[test]
    fn integers_are_big_endian_like_java() {
        // new IntegerSerializer().serialize("t", 1) == {0, 0, 0, 1}
        assert_eq!(ser(&1i32), [0, 0, 0, 1]);
        assert_eq!(ser(&-1i32), [0xff; 4]);
        assert_eq!(ser(&0x0102i16), [1, 2]);
        assert_eq!(ser(&-2i16), [0xff, 0xfe]);
        assert_eq!(ser(&1i64), [0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(ser(&i64::MIN), [0x80, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(ser(&0x0102_0304i32), [1, 2, 3, 4]);
        assert_eq!(de::<i32>(&[0, 0, 1, 0]).unwrap(), 256);
        assert_eq!(de::<i16>(&[0x80, 0]).unwrap(), i16::MIN);
        assert_eq!(de::<i64>(&[0xff; 8]).unwrap(), -1);
    }

    #[test]
    fn floats_are_ieee754_big_endian_like_java() {
        // Float.floatToRawIntBits(1.0f) == 0x3f800000
        assert_eq!(ser(&1.0f32), [0x3f, 0x80, 0, 0]);
        assert_eq!(ser(&-2.5f32), [0xc0, 0x20, 0, 0]);
        // Double.doubleToRawLongBits(1.0) == 0x3ff0000000000000
        assert_eq!(ser(&1.0f64), [0x3f, 0xf0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            ser(&0.1f64),
            [0x3f, 0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a]
        );
        assert_eq!(
            de::<f64>(&[0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18]).unwrap(),
            std::f64::consts::PI
        );
        assert_eq!(de::<f32>(&[0x3f, 0x80, 0, 0]).unwrap(), 1.0);
    }

    #[test]
    fn wrong_sizes_are_errors_not_panics() {
        for (data, expected) in [(&[0u8; 3][..], 4), (&[0u8; 5][..], 4), (&[][..], 4)] {
            match de::<i32>(data) {
                Err(SerializationError::Size {
                    expected: e,
                    actual,
                }) => {
                    assert_eq!((e, actual), (expected, data.len()));
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(de::<i16>(&[1]).is_err());
        assert!(de::<i64>(&[1; 4]).is_err());
        assert!(de::<f32>(&[1; 8]).is_err());
        assert!(de::<f64>(&[1; 4]).is_err());
    }

    #[test]
    fn strings_bytes_and_uuids_like_java() {
        assert_eq!(ser("héllo"), b"h\xc3\xa9llo");
        assert_eq!(ser(&String::from("abc")), b"abc");
        assert_eq!(de::<String>(b"h\xc3\xa9llo").unwrap(), "héllo");
        assert!(matches!(
            de::<String>(&[0xff, 0xfe]),
            Err(SerializationError::Utf8(_))
        ));
        assert_eq!(ser(&vec![0u8, 1, 255]), [0, 1, 255]);
        assert_eq!(ser(&Bytes::from_static(b"xy")), b"xy");
        assert_eq!(de::<Vec<u8>>(&[9, 8]).unwrap(), [9, 8]);
        assert_eq!(de::<Bytes>(&[7]).unwrap(), Bytes::from_static(&[7]));
        // UUIDSerializer writes UUID.toString() in UTF-8: lower-case, hyphenated, 36 bytes.
        let id = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        assert_eq!(ser(&id), b"01234567-89ab-cdef-0123-456789abcdef");
        assert_eq!(
            de::<Uuid>(b"01234567-89AB-CDEF-0123-456789ABCDEF").unwrap(),
            id
        );
        assert!(matches!(
            de::<Uuid>(b"not-a-uuid"),
            Err(SerializationError::Uuid(_))
        ));
    }

    #[test]
    fn json_round_trips_any_serde_type() {
        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
        struct Order {
            id: u32,
            item: String,
        }
        let json = Json::<Order>::new();
        let order = Order {
            id: 7,
            item: "tea".into(),
        };
        let bytes = json.serialize("orders", &order).unwrap();
        assert_eq!(&bytes[..], br#"{"id":7,"item":"tea"}"#);
        assert_eq!(json.deserialize("orders", &bytes).unwrap(), order);
        assert!(matches!(
            json.deserialize("orders", b"{\"id\":"),
            Err(SerializationError::Json(_))
        ));
    }

    #[test]
    fn user_formats_plug_in() {
        /// A toy format: the value's length-prefixed decimal text.
        struct Decimal;
        impl Serializer<u64> for Decimal {
            fn serialize(&self, _: &str, value: &u64) -> Result<Bytes, SerializationError> {
                let text = value.to_string();
                let mut out = vec![text.len() as u8];
                out.extend_from_slice(text.as_bytes());
                Ok(Bytes::from(out))
            }
        }
        impl Deserializer<u64> for Decimal {
            fn deserialize(&self, _: &str, data: &[u8]) -> Result<u64, SerializationError> {
                let text = std::str::from_utf8(data.get(1..).unwrap_or_default())?;
                text.parse()
                    .map_err(|e| SerializationError::Custom(format!("{e}")))
            }
        }
        fn round_trip<S: Serializer<u64> + Deserializer<u64>>(s: &S, v: u64) -> u64 {
            s.deserialize("t", &s.serialize("t", &v).unwrap()).unwrap()
        }
        assert_eq!(round_trip(&Decimal, 42), 42);
        assert_eq!(&Decimal.serialize("t", &42).unwrap()[..], b"\x0242");
    }

    #[test]
    fn typed_records_round_trip_through_producer_and_consumer_records() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Order {
            id: u32,
            item: String,
        }
        let order = Order {
            id: 7,
            item: "tea".into(),
        };
        let record = crate::producer::ProducerRecord::serialized(
            "orders",
            Some(&42i64),
            Some(&order),
            &Kafka,
            &Json::<Order>::new(),
        )
        .unwrap();
        assert_eq!(record.key.as_deref(), Some(&[0, 0, 0, 0, 0, 0, 0, 42][..]));
        let consumed = crate::consumer::ConsumerRecord {
            topic: record.topic.clone(),
            partition: 0,
            offset: 0,
            timestamp: 0,
            timestamp_type: gregor_protocol::batch::TimestampType::CreateTime,
            key: record.key.clone(),
            value: record.value.clone(),
            headers: Vec::new(),
        };
        assert_eq!(consumed.deserialize_key::<i64>(&Kafka).unwrap(), Some(42));
        assert_eq!(
            consumed.deserialize_value(&Json::<Order>::new()).unwrap(),
            Some(order)
        );
        let tombstone = crate::consumer::ConsumerRecord {
            value: None,
            ..consumed
        };
        assert_eq!(
            tombstone.deserialize_value(&Json::<Order>::new()).unwrap(),
            None
        );
        // A value that is not what the deserializer expects is an error, not a panic.
        assert!(tombstone.deserialize_key::<i16>(&Kafka).is_err());
    }
}

//! Serdes: how keys, values and aggregates become bytes and back.

use std::marker::PhantomData;

use bytes::Bytes;

use crate::error::StreamsError;

/// Turns a `T` into bytes and back (Kafka Streams' `Serde<T>`).
pub trait Serde<T>: Send + Sync + 'static {
    fn serialize(&self, value: &T) -> Vec<u8>;
    fn deserialize(&self, bytes: &[u8]) -> Result<T, StreamsError>;
}

/// UTF-8 strings.
#[derive(Debug, Clone, Copy, Default)]
pub struct StringSerde;

impl Serde<String> for StringSerde {
    fn serialize(&self, value: &String) -> Vec<u8> {
        value.as_bytes().to_vec()
    }
    fn deserialize(&self, bytes: &[u8]) -> Result<String, StreamsError> {
        String::from_utf8(bytes.to_vec())
            .map_err(|e| StreamsError::Deserialize { what: "a UTF-8 string", reason: e.to_string() })
    }
}

/// Unsigned 64-bit integers, 8 bytes big-endian (Kafka's `LongSerde`
/// layout).
#[derive(Debug, Clone, Copy, Default)]
pub struct U64Serde;

impl Serde<u64> for U64Serde {
    fn serialize(&self, value: &u64) -> Vec<u8> {
        value.to_be_bytes().to_vec()
    }
    fn deserialize(&self, bytes: &[u8]) -> Result<u64, StreamsError> {
        let array: [u8; 8] = bytes.try_into().map_err(|_| StreamsError::Deserialize {
            what: "a u64",
            reason: format!("{} bytes, expected 8", bytes.len()),
        })?;
        Ok(u64::from_be_bytes(array))
    }
}

/// Bytes as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesSerde;

impl Serde<Bytes> for BytesSerde {
    fn serialize(&self, value: &Bytes) -> Vec<u8> {
        value.to_vec()
    }
    fn deserialize(&self, bytes: &[u8]) -> Result<Bytes, StreamsError> {
        Ok(Bytes::copy_from_slice(bytes))
    }
}

/// Any serde type as JSON.
pub struct JsonSerde<T>(PhantomData<fn() -> T>);

impl<T> JsonSerde<T> {
    pub fn new() -> Self {
        JsonSerde(PhantomData)
    }
}

impl<T> Default for JsonSerde<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for JsonSerde<T> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<T> Serde<T> for JsonSerde<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    fn serialize(&self, value: &T) -> Vec<u8> {
        // Serializing a serde data type to a Vec cannot fail for the types
        // JSON supports; a map with non-string keys is a programming error.
        serde_json::to_vec(value).expect("value serializes to JSON")
    }
    fn deserialize(&self, bytes: &[u8]) -> Result<T, StreamsError> {
        serde_json::from_slice(bytes).map_err(|e| StreamsError::Deserialize { what: "JSON", reason: e.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_serde_round_trips() {
        assert_eq!(StringSerde.deserialize(&StringSerde.serialize(&"héllo".to_string())).unwrap(), "héllo");
        assert_eq!(U64Serde.deserialize(&U64Serde.serialize(&u64::MAX)).unwrap(), u64::MAX);
        assert_eq!(
            BytesSerde.deserialize(&BytesSerde.serialize(&Bytes::from_static(b"\0\xff"))).unwrap(),
            &b"\0\xff"[..]
        );
        let json = JsonSerde::<(String, i64)>::new();
        assert_eq!(json.deserialize(&json.serialize(&("a".into(), -3))).unwrap(), ("a".to_string(), -3));
    }

    #[test]
    fn bad_bytes_name_what_was_expected() {
        let err = U64Serde.deserialize(b"abc").unwrap_err().to_string();
        assert!(err.contains("u64") && err.contains("3 bytes"), "{err}");
        assert!(StringSerde.deserialize(&[0xff]).unwrap_err().to_string().contains("UTF-8"));
        assert!(JsonSerde::<u32>::new().deserialize(b"{").unwrap_err().to_string().contains("JSON"));
    }
}

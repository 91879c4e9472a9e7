//! Stored values: one schema-version byte, then the protobuf message. Protobuf keeps unknown
//! and missing fields readable both ways; the byte is there for changes protobuf cannot absorb.

use prost::Message;

use crate::error::{Error, Result};

pub const SCHEMA_V1: u8 = 1;

pub fn encode<M: Message>(m: &M) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + m.encoded_len());
    out.push(SCHEMA_V1);
    // Writing into a Vec cannot run out of room.
    m.encode(&mut out).expect("encode into Vec");
    out
}

pub fn decode<M: Message + Default>(bytes: &[u8]) -> Result<M> {
    match bytes.split_first() {
        Some((&SCHEMA_V1, body)) => {
            M::decode(body).map_err(|e| Error::internal(format!("corrupt metadata value: {e}")))
        }
        Some((v, _)) => Err(Error::internal(format!(
            "metadata value has schema version {v}, newer than this build understands; upgrade this process"
        ))),
        None => Err(Error::internal("empty metadata value")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Bucket, ObjectMeta};

    #[test]
    fn a_value_is_the_schema_byte_then_the_message() {
        let b = Bucket { name: "b".into(), created_ms: 5, ..Default::default() };
        let bytes = encode(&b);
        assert_eq!(bytes[0], SCHEMA_V1);
        assert_eq!(&bytes[1..], b.encode_to_vec().as_slice());
        assert_eq!(decode::<Bucket>(&bytes).unwrap(), b);
    }

    #[test]
    fn newer_empty_and_corrupt_values_are_refused_with_what_to_do() {
        let e = decode::<ObjectMeta>(&[2, 0]).unwrap_err();
        assert!(e.message.contains("upgrade this process"), "{e}");
        assert!(decode::<ObjectMeta>(&[]).unwrap_err().message.contains("empty"));
        assert!(decode::<ObjectMeta>(&[SCHEMA_V1, 0xFF, 0xFF]).unwrap_err().message.contains("corrupt"));
    }
}

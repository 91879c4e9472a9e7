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

//! A gRPC codec that passes protobuf bytes through: the OTLP/gRPC receiver hands received messages to
//! the pipeline undecoded, and gRPC forwarding sends payloads as the bytes they are.

use bytes::Buf;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// A gRPC codec that neither decodes requests nor encodes responses: protobuf bytes in and out (public
/// for clients that send bytes as they are, such as the tests of bad input).
#[derive(Debug, Clone, Copy, Default)]
pub struct PassThrough;

impl Codec for PassThrough {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = PassThrough;
    type Decoder = PassThrough;

    fn encoder(&mut self) -> Self::Encoder {
        PassThrough
    }

    fn decoder(&mut self) -> Self::Decoder {
        PassThrough
    }
}

impl Encoder for PassThrough {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, buffer: &mut EncodeBuf<'_>) -> Result<(), Status> {
        bytes::BufMut::put_slice(buffer, &item);
        Ok(())
    }
}

impl Decoder for PassThrough {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, buffer: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut bytes = vec![0; buffer.remaining()];
        buffer.copy_to_slice(&mut bytes);
        Ok(Some(bytes))
    }
}

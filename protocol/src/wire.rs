//! Encoding and decoding: [`encode`], [`decode`], the [`Message`] trait of the four families,
//! and [`WireError`].

use core::fmt;

use postcard::experimental::max_size::MaxSize;
use postcard::ser_flavors::Flavor;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{ExitRecord, ExitReply, MAX_MESSAGE_SIZE, Request, Response};

/// Why a message could not be encoded or decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireError {
    /// Encoding: the output buffer is too small for the message.
    BufferTooSmall,
    /// Decoding: the input ended inside the message.
    Truncated,
    /// Decoding: a whole message was followed by `count` more bytes.
    TrailingBytes {
        /// How many bytes followed the message.
        count: usize,
    },
    /// Decoding: a varint longer than its type allows, or overflowing it.
    BadVarint,
    /// Decoding: a `bool` or an option tag other than 0 or 1.
    BadTag,
    /// Decoding: a value the message type does not allow: an unknown variant index, a batch
    /// longer than its capacity, unknown flag bits, a block of the wrong length or with a
    /// byte no value encodes as.
    InvalidValue,
    /// Decoding: the input decodes, but is not the message's one encoding (a varint with
    /// redundant bytes, such as `0x80 0x00` for 0).
    NonCanonical,
    /// An error postcard reports for features these messages do not use.
    Unsupported,
}

impl WireError {
    pub(crate) fn from_postcard(error: postcard::Error) -> WireError {
        use postcard::Error as E;
        match error {
            E::SerializeBufferFull => WireError::BufferTooSmall,
            E::DeserializeUnexpectedEnd => WireError::Truncated,
            E::DeserializeBadVarint => WireError::BadVarint,
            E::DeserializeBadBool | E::DeserializeBadOption => WireError::BadTag,
            // Serde reports unknown variant indexes and over-long heapless batches as custom
            // errors; postcard's own "bad enum" is a variant index above u32::MAX.
            E::SerdeDeCustom
            | E::DeserializeBadEnum
            | E::DeserializeBadChar
            | E::DeserializeBadUtf8
            | E::DeserializeBadEncoding => WireError::InvalidValue,
            _ => WireError::Unsupported,
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::BufferTooSmall => f.write_str("output buffer too small"),
            WireError::Truncated => f.write_str("input ends inside the message"),
            WireError::TrailingBytes { count } => write!(f, "{count} bytes after the end of the message"),
            WireError::BadVarint => f.write_str("malformed or overflowing varint"),
            WireError::BadTag => f.write_str("bool or option tag other than 0 or 1"),
            WireError::InvalidValue => f.write_str(
                "value not allowed (unknown variant, over-long batch, unknown flag bits or bad block)",
            ),
            WireError::NonCanonical => f.write_str("non-canonical encoding (redundant varint bytes)"),
            WireError::Unsupported => f.write_str("unsupported serialization feature"),
        }
    }
}

impl core::error::Error for WireError {}

/// Encodes `message` into the front of `buf`; returns the encoded bytes.
pub fn encode<'b, T: Serialize + ?Sized>(message: &T, buf: &'b mut [u8]) -> Result<&'b mut [u8], WireError> {
    let len = postcard::serialize_with_flavor(
        message,
        Writer {
            buf: &mut *buf,
            position: 0,
        },
    )
    .map_err(WireError::from_postcard)?;
    // `len` never exceeds `buf.len()`: the writer checks every byte.
    buf.get_mut(..len).ok_or(WireError::BufferTooSmall)
}

/// Longest output copied byte by byte; longer ones (blocks) are one `memcpy`.
const SHORT_COPY: usize = 16;

/// A serializer output into a slice. Postcard's own copies each varint with a
/// variable-length `memcpy` call; varints are 1–10 bytes, and a checked byte loop is about
/// twice as fast for them.
struct Writer<'a> {
    buf: &'a mut [u8],
    position: usize,
}

impl Flavor for Writer<'_> {
    type Output = usize;

    #[inline(always)]
    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        let slot = self
            .buf
            .get_mut(self.position)
            .ok_or(postcard::Error::SerializeBufferFull)?;
        *slot = byte;
        self.position += 1;
        Ok(())
    }

    #[inline(always)]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        if data.len() <= SHORT_COPY {
            // Byte by byte, each checked: the compiler does not turn this into a `memcpy` call.
            for &byte in data {
                self.try_push(byte)?;
            }
            return Ok(());
        }
        let end = self.position.saturating_add(data.len());
        self.buf
            .get_mut(self.position..end)
            .ok_or(postcard::Error::SerializeBufferFull)?
            .copy_from_slice(data);
        self.position = end;
        Ok(())
    }

    fn finalize(self) -> postcard::Result<usize> {
        Ok(self.position)
    }
}

/// Decodes exactly one message from all of `bytes`.
///
/// Fails on truncated input, on bytes after the message, and on any value the type does not
/// allow (see [`WireError`]). Never panics, never allocates, never reads outside `bytes`.
/// Like postcard, it accepts varints with redundant bytes (`0x80 0x00` for 0); use
/// [`decode_canonical`] where only the one canonical encoding may pass.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    let mut deserializer = postcard::Deserializer::from_bytes(bytes);
    let result = T::deserialize(&mut deserializer);
    let count = deserializer.finalize().map_or(0, <[u8]>::len);
    match result {
        Ok(_) if count != 0 => Err(WireError::TrailingBytes { count }),
        Ok(message) => Ok(message),
        Err(error) => Err(WireError::from_postcard(error)),
    }
}

/// Like [`decode`], and also rejects input that is not the canonical encoding of what it
/// decodes to ([`WireError::NonCanonical`]), so that every accepted message has exactly one
/// byte form. It re-encodes the message against the input (no buffer needed), which costs
/// about as much as [`encode`].
pub fn decode_canonical<T: Serialize + DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    let message = decode(bytes)?;
    postcard::serialize_with_flavor(
        &message,
        Compare {
            expected: bytes,
            position: 0,
        },
    )
    .map_err(|_| WireError::NonCanonical)?;
    Ok(message)
}

/// A serializer output that compares with `expected` instead of storing, and fails at the
/// first difference or if the output ends early.
struct Compare<'a> {
    expected: &'a [u8],
    position: usize,
}

impl Flavor for Compare<'_> {
    type Output = ();

    #[inline(always)]
    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        match self.expected.get(self.position) {
            Some(&expected) if expected == byte => {
                self.position += 1;
                Ok(())
            }
            _ => Err(postcard::Error::SerializeBufferFull),
        }
    }

    #[inline(always)]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        let end = self.position + data.len();
        let expected = self
            .expected
            .get(self.position..end)
            .ok_or(postcard::Error::SerializeBufferFull)?;
        // An OR of differences, not `==`: a slice comparison becomes a `memcmp` call, which
        // costs more than comparing the 1–10 bytes of a varint.
        let difference = expected.iter().zip(data).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if difference != 0 {
            return Err(postcard::Error::SerializeBufferFull);
        }
        self.position = end;
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        if self.position == self.expected.len() {
            Ok(())
        } else {
            Err(postcard::Error::SerializeBufferFull)
        }
    }
}

/// Number of bytes of the LEB128 varint of `value` (at least 1).
pub(crate) const fn varint_len(value: u64) -> usize {
    let bits = 64 - value.leading_zeros() as usize;
    if bits == 0 { 1 } else { bits.div_ceil(7) }
}

/// The four message families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// [`Request`].
    Request,
    /// [`Response`].
    Response,
    /// [`ExitRecord`].
    ExitRecord,
    /// [`ExitReply`].
    ExitReply,
}

impl MessageKind {
    /// All four.
    pub const ALL: [MessageKind; 4] = [
        MessageKind::Request,
        MessageKind::Response,
        MessageKind::ExitRecord,
        MessageKind::ExitReply,
    ];

    /// Kebab-case name: `"request"`, `"response"`, `"exit-record"`, `"exit-reply"`.
    pub const fn name(self) -> &'static str {
        match self {
            MessageKind::Request => "request",
            MessageKind::Response => "response",
            MessageKind::ExitRecord => "exit-record",
            MessageKind::ExitReply => "exit-reply",
        }
    }

    /// The kind named `name` (as [`name`](Self::name) spells it).
    pub fn from_name(name: &str) -> Option<MessageKind> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// The family's largest encoding, in bytes.
    pub const fn max_size(self) -> usize {
        match self {
            MessageKind::Request => Request::MAX_SIZE,
            MessageKind::Response => Response::MAX_SIZE,
            MessageKind::ExitRecord => ExitRecord::MAX_SIZE,
            MessageKind::ExitReply => ExitReply::MAX_SIZE,
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A message family: a top-level type that travels alone in one transport payload.
pub trait Message: Serialize + DeserializeOwned + MaxSize {
    /// Which family.
    const KIND: MessageKind;

    /// The largest encoding of any value, in bytes (at most [`MAX_MESSAGE_SIZE`]).
    const MAX_SIZE: usize = Self::POSTCARD_MAX_SIZE;

    /// Encodes into the front of `buf` (see [`encode`]).
    #[inline]
    fn encode<'b>(&self, buf: &'b mut [u8]) -> Result<&'b mut [u8], WireError> {
        encode(self, buf)
    }

    /// Decodes one message from all of `bytes` (see [`decode`]).
    #[inline]
    fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        decode(bytes)
    }

    /// Decodes one message from all of `bytes`, accepting only its canonical encoding (see
    /// [`decode_canonical`]).
    #[inline]
    fn decode_canonical(bytes: &[u8]) -> Result<Self, WireError> {
        decode_canonical(bytes)
    }
}

macro_rules! message_family {
    ($ty:ident) => {
        impl Message for $ty {
            const KIND: MessageKind = MessageKind::$ty;

            #[inline]
            fn encode<'b>(&self, buf: &'b mut [u8]) -> Result<&'b mut [u8], WireError> {
                $ty::encode(self, buf)
            }

            #[inline]
            fn decode(bytes: &[u8]) -> Result<Self, WireError> {
                $ty::decode(bytes)
            }

            #[inline]
            fn decode_canonical(bytes: &[u8]) -> Result<Self, WireError> {
                $ty::decode_canonical(bytes)
            }
        }

        impl $ty {
            /// The largest encoding of any value of this family, in bytes.
            pub const MAX_SIZE: usize = <$ty as MaxSize>::POSTCARD_MAX_SIZE;

            /// Encodes into the front of `buf` (see [`encode`]).
            #[inline]
            pub fn encode<'b>(&self, buf: &'b mut [u8]) -> Result<&'b mut [u8], WireError> {
                <$ty as FamilyCodec>::encode_family(self, buf)
            }

            /// Decodes one message from all of `bytes` (see [`decode`]).
            #[inline]
            pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
                <$ty as FamilyCodec>::decode_family(bytes)
            }

            /// Decodes one message from all of `bytes`, accepting only its canonical encoding
            /// (see [`decode_canonical`]).
            #[inline]
            pub fn decode_canonical(bytes: &[u8]) -> Result<Self, WireError> {
                decode_canonical_family(bytes)
            }

            /// Decodes one message from all of `bytes` into `self`, reusing its storage: the
            /// same result as [`decode`](Self::decode) without moving a whole message out
            /// (hundreds of bytes for the exit families, once per exit). On an error `self`
            /// holds some message of the family, partly overwritten.
            #[inline]
            pub fn decode_into(&mut self, bytes: &[u8]) -> Result<(), WireError> {
                <$ty as FamilyCodec>::decode_family_into(bytes, self)
            }
        }

        const _: () = assert!(
            $ty::MAX_SIZE <= MAX_MESSAGE_SIZE,
            "message family exceeds one IPC payload"
        );
    };
}

/// How a family encodes and decodes: through serde, or (the exit record) by a direct path
/// that produces and accepts exactly the same bytes.
pub(crate) trait FamilyCodec: Sized {
    fn encode_family<'b>(&self, buf: &'b mut [u8]) -> Result<&'b mut [u8], WireError>;
    fn decode_family(bytes: &[u8]) -> Result<Self, WireError>;

    #[inline]
    fn decode_family_into(bytes: &[u8], out: &mut Self) -> Result<(), WireError> {
        *out = Self::decode_family(bytes)?;
        Ok(())
    }
}

macro_rules! serde_codec {
    ($($ty:ident),*) => {$(
        impl FamilyCodec for $ty {
            #[inline]
            fn encode_family<'b>(&self, buf: &'b mut [u8]) -> Result<&'b mut [u8], WireError> {
                encode(self, buf)
            }

            #[inline]
            fn decode_family(bytes: &[u8]) -> Result<Self, WireError> {
                decode(bytes)
            }
        }
    )*};
}

serde_codec!(Response);

/// The reply takes the direct path of [`crate::reply_codec`], the same bytes as serde's.
impl FamilyCodec for ExitReply {
    #[inline]
    fn encode_family<'b>(&self, buf: &'b mut [u8]) -> Result<&'b mut [u8], WireError> {
        let len = crate::reply_codec::encode(self, buf)?;
        buf.get_mut(..len).ok_or(WireError::BufferTooSmall)
    }

    #[inline]
    fn decode_family(bytes: &[u8]) -> Result<Self, WireError> {
        let mut reply = ExitReply::new(0);
        crate::reply_codec::decode_into(bytes, &mut reply)?;
        Ok(reply)
    }

    #[inline]
    fn decode_family_into(bytes: &[u8], reply: &mut ExitReply) -> Result<(), WireError> {
        crate::reply_codec::decode_into(bytes, reply)
    }
}

/// [`decode_canonical`] on a family's own paths: decodes, then re-encodes and compares.
#[inline]
fn decode_canonical_family<T: FamilyCodec>(bytes: &[u8]) -> Result<T, WireError> {
    let message = T::decode_family(bytes)?;
    let mut buf = [0u8; MAX_MESSAGE_SIZE];
    match message.encode_family(&mut buf) {
        Ok(encoding) if *encoding == *bytes => Ok(message),
        _ => Err(WireError::NonCanonical),
    }
}

impl FamilyCodec for Request {
    #[inline]
    fn encode_family<'b>(&self, buf: &'b mut [u8]) -> Result<&'b mut [u8], WireError> {
        encode(self, buf)
    }

    /// [`Request::ReadFields`], the most frequent request, is decoded directly into the result
    /// (serde's derive moves the 136-byte batch through four results on its way out); the
    /// checks come in the serde path's order, so both give the same result for every input.
    #[inline]
    fn decode_family(bytes: &[u8]) -> Result<Self, WireError> {
        const READ_FIELDS: u8 = 1;
        match bytes.split_first() {
            Some((&READ_FIELDS, rest)) => {
                let (block, rest) =
                    postcard::take_from_bytes::<&[u8]>(rest).map_err(WireError::from_postcard)?;
                let mut request = Request::ReadFields(heapless::Vec::new());
                if let Request::ReadFields(fields) = &mut request {
                    crate::block::take_batch(fields, block).ok_or(WireError::InvalidValue)?;
                }
                match rest.len() {
                    0 => Ok(request),
                    count => Err(WireError::TrailingBytes { count }),
                }
            }
            _ => decode(bytes),
        }
    }
}

message_family!(Request);
message_family!(Response);
message_family!(ExitRecord);
message_family!(ExitReply);

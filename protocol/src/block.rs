//! Fixed-layout blocks: how register groups, guest state and batches of numbers travel.
//!
//! Per-field postcard encoding costs a varint loop and a trip through serde's visitor
//! machinery for every number; a register group of 15 `u64`s became 15 of each. A *block* is
//! instead the values' fixed-width little-endian bytes, in declaration order, with no padding,
//! carried as one postcard byte string (varint length, then the bytes): one copy each way,
//! and the decoder checks one length instead of fifteen varints.
//!
//! In human-readable formats (JSON for the `vmm` CLI) the same types keep their ordinary
//! struct and list forms: [`block_struct!`] derives those on a private mirror with the same
//! fields.

use core::fmt;
use core::marker::PhantomData;

use heapless::Vec;
use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

/// A type with a little-endian byte form of bounded size, for blocks.
pub(crate) trait Block: Sized {
    /// The longest form, in bytes.
    const MAX_SIZE: usize;

    /// Appends the form to `out`; `None` if `out` has too few bytes left.
    fn put(&self, out: &mut Writer<'_>) -> Option<()>;

    /// Takes the form from the front of `input`; `None` if `input` has too few bytes left or
    /// they are not the form of any value.
    fn take(input: &mut Reader<'_>) -> Option<Self>;
}

/// A [`Block`] whose every value takes exactly [`SIZE`](Self::SIZE) bytes.
pub(crate) trait FixedBlock: Block {
    /// The form's length in bytes.
    const SIZE: usize = Self::MAX_SIZE;
}

/// Appends to a byte slice, front to back.
pub(crate) struct Writer<'a> {
    rest: &'a mut [u8],
}

impl<'a> Writer<'a> {
    #[inline(always)]
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Writer { rest: buf }
    }

    #[inline(always)]
    pub(crate) fn bytes<const N: usize>(&mut self, bytes: [u8; N]) -> Option<()> {
        let (head, tail) = core::mem::take(&mut self.rest).split_first_chunk_mut::<N>()?;
        *head = bytes;
        self.rest = tail;
        Some(())
    }

    #[inline(always)]
    pub(crate) fn slice(&mut self, bytes: &[u8]) -> Option<()> {
        let (head, tail) = core::mem::take(&mut self.rest).split_at_mut_checked(bytes.len())?;
        head.copy_from_slice(bytes);
        self.rest = tail;
        Some(())
    }

    /// Bytes not yet written.
    #[inline(always)]
    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }
}

/// Takes from a byte slice, front to back.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    #[inline(always)]
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    #[inline(always)]
    pub(crate) fn bytes<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, tail) = self.rest.split_first_chunk::<N>()?;
        self.rest = tail;
        Some(*head)
    }

    #[inline(always)]
    pub(crate) fn slice(&mut self, len: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.rest.split_at_checked(len)?;
        self.rest = tail;
        Some(head)
    }

    /// Whether every byte has been taken.
    #[inline(always)]
    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
}

macro_rules! block_integer {
    ($($ty:ty),*) => {$(
        impl Block for $ty {
            const MAX_SIZE: usize = size_of::<$ty>();

            #[inline(always)]
            fn put(&self, out: &mut Writer<'_>) -> Option<()> {
                out.bytes(self.to_le_bytes())
            }

            #[inline(always)]
            fn take(input: &mut Reader<'_>) -> Option<Self> {
                input.bytes().map(<$ty>::from_le_bytes)
            }
        }

        impl FixedBlock for $ty {}
    )*};
}

block_integer!(u8, u16, u32, u64);

/// A `bool` is one byte, `0` or `1`; any other byte does not decode.
impl Block for bool {
    const MAX_SIZE: usize = 1;

    #[inline(always)]
    fn put(&self, out: &mut Writer<'_>) -> Option<()> {
        out.bytes([u8::from(*self)])
    }

    #[inline(always)]
    fn take(input: &mut Reader<'_>) -> Option<Self> {
        match input.bytes::<1>()? {
            [0] => Some(false),
            [1] => Some(true),
            _ => None,
        }
    }
}

impl FixedBlock for bool {}

/// An `Option` is a tag byte, `0` (none) or `1` followed by the value; any other tag does
/// not decode.
impl<T: Block> Block for Option<T> {
    const MAX_SIZE: usize = 1 + T::MAX_SIZE;

    #[inline(always)]
    fn put(&self, out: &mut Writer<'_>) -> Option<()> {
        match self {
            None => out.bytes([0]),
            Some(value) => {
                out.bytes([1])?;
                value.put(out)
            }
        }
    }

    #[inline(always)]
    fn take(input: &mut Reader<'_>) -> Option<Self> {
        match input.bytes::<1>()? {
            [0] => Some(None),
            [1] => T::take(input).map(Some),
            _ => None,
        }
    }
}

/// A short byte list is its length as one byte, then the bytes.
impl<const N: usize> Block for Vec<u8, N> {
    const MAX_SIZE: usize = {
        assert!(N <= u8::MAX as usize, "byte list too long for a length byte");
        1 + N
    };

    #[inline(always)]
    fn put(&self, out: &mut Writer<'_>) -> Option<()> {
        out.bytes([u8::try_from(self.len()).ok()?])?;
        out.slice(self)
    }

    #[inline(always)]
    fn take(input: &mut Reader<'_>) -> Option<Self> {
        let [len] = input.bytes::<1>()?;
        Vec::from_slice(input.slice(usize::from(len))?).ok()
    }
}

/// Implements [`Block`] for fieldless enums: one byte, the variant's index in declaration
/// order (its discriminant, checked at compile time against the list given).
macro_rules! block_index_enum {
    ($($ty:ty => $variants:expr;)*) => {$(
        impl $crate::block::Block for $ty {
            const MAX_SIZE: usize = 1;

            #[inline(always)]
            fn put(&self, out: &mut $crate::block::Writer<'_>) -> Option<()> {
                out.bytes([*self as u8])
            }

            #[inline(always)]
            fn take(input: &mut $crate::block::Reader<'_>) -> Option<Self> {
                const VARIANTS: &[$ty] = &$variants;
                let [index] = input.bytes::<1>()?;
                VARIANTS.get(usize::from(index)).copied()
            }
        }

        impl $crate::block::FixedBlock for $ty {}

        const _: () = {
            let variants: &[$ty] = &$variants;
            let mut i = 0;
            while i < variants.len() {
                assert!(variants[i] as usize == i, "variant list out of declaration order");
                i += 1;
            }
        };
    )*};
}

pub(crate) use block_index_enum;

/// Decodes a whole block from a byte string of exactly `T::SIZE` bytes.
#[inline(always)]
pub(crate) fn from_bytes<T: FixedBlock>(bytes: &[u8]) -> Option<T> {
    if bytes.len() != T::SIZE {
        return None;
    }
    // The length is now a known constant: the compiler drops the reader's checks.
    T::take(&mut Reader::new(bytes))
}

/// The postcard size of a byte string of `len` bytes: its varint length, then the bytes.
pub(crate) const fn byte_string_size(len: usize) -> usize {
    crate::wire::varint_len(len as u64) + len
}

/// A visitor for the byte string of one `T` block.
pub(crate) struct BlockVisitor<T>(PhantomData<T>);

impl<T> BlockVisitor<T> {
    pub(crate) const fn new() -> Self {
        BlockVisitor(PhantomData)
    }
}

impl<T: FixedBlock> Visitor<'_> for BlockVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a byte string of {} bytes", T::SIZE)
    }

    #[inline]
    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<T, E> {
        from_bytes(bytes).ok_or_else(|| E::invalid_length(bytes.len(), &self))
    }
}

/// Defines a plain-data struct whose binary serde form is one [`Block`]: its fields'
/// fixed-width little-endian bytes in declaration order, as a byte string. Human-readable
/// formats see an ordinary struct with the same field names (serde's derive on a private
/// mirror). Also implements postcard's `MaxSize` (exact: every value has the same size).
macro_rules! block_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$field_meta:meta])*
                pub $field:ident: $ty:ty,
            )*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $(
                $(#[$field_meta])*
                pub $field: $ty,
            )*
        }

        impl $crate::block::Block for $name {
            const MAX_SIZE: usize = 0 $(+ <$ty as $crate::block::FixedBlock>::SIZE)*;

            #[inline(always)]
            fn put(&self, out: &mut $crate::block::Writer<'_>) -> Option<()> {
                // Fields into a whole-block array (their checks fold away), then one check.
                let mut bytes = [0u8; <$name as $crate::block::FixedBlock>::SIZE];
                let mut fields = $crate::block::Writer::new(&mut bytes);
                $( $crate::block::Block::put(&self.$field, &mut fields)?; )*
                out.bytes(bytes)
            }

            #[inline(always)]
            fn take(input: &mut $crate::block::Reader<'_>) -> Option<Self> {
                // One length check for the whole block; the fields' checks then fold away.
                let bytes: [u8; <$name as $crate::block::FixedBlock>::SIZE] = input.bytes()?;
                let mut fields = $crate::block::Reader::new(&bytes);
                Some($name {
                    $( $field: $crate::block::Block::take(&mut fields)?, )*
                })
            }
        }

        impl postcard::experimental::max_size::MaxSize for $name {
            const POSTCARD_MAX_SIZE: usize =
                $crate::block::byte_string_size(<$name as $crate::block::FixedBlock>::SIZE);
        }

        impl $crate::block::FixedBlock for $name {}

        const _: () = {
            /// The human-readable form: the derived struct form of the same fields.
            mod mirror {
                #[allow(unused_imports, reason = "field types of some mirrors")]
                use super::*;

                #[derive(serde::Serialize, serde::Deserialize)]
                pub(super) struct $name {
                    $( pub(super) $field: $ty, )*
                }
            }

            impl serde::Serialize for $name {
                #[inline]
                fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                    if serializer.is_human_readable() {
                        serde::Serialize::serialize(&mirror::$name { $( $field: self.$field, )* }, serializer)
                    } else {
                        let mut buf = [0u8; <$name as $crate::block::FixedBlock>::SIZE];
                        match $crate::block::Block::put(self, &mut $crate::block::Writer::new(&mut buf)) {
                            Some(()) => serializer.serialize_bytes(&buf),
                            None => Err(serde::ser::Error::custom("block size")),
                        }
                    }
                }
            }

            impl<'de> serde::Deserialize<'de> for $name {
                #[inline]
                fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                    if deserializer.is_human_readable() {
                        let m = <mirror::$name as serde::Deserialize>::deserialize(deserializer)?;
                        Ok($name { $( $field: m.$field, )* })
                    } else {
                        deserializer.deserialize_bytes($crate::block::BlockVisitor::<$name>::new())
                    }
                }
            }
        };
    };
}

pub(crate) use block_struct;

/// Largest batch block in bytes: [`MAX_FIELDS`](crate::MAX_FIELDS) field-value pairs.
const MAX_BATCH_BYTES: usize = crate::MAX_FIELDS * <crate::FieldValue as FixedBlock>::SIZE;

/// The postcard size of a full batch of `N` blocks of `T`.
pub(crate) const fn batch_max_size<T: FixedBlock>(capacity: usize) -> usize {
    byte_string_size(capacity * T::SIZE)
}

/// Appends the blocks of a batch's byte string to the empty `batch`: `None` unless `bytes` is
/// a whole number of blocks, at most `N` of them.
#[inline]
pub(crate) fn take_batch<T: FixedBlock, const N: usize>(batch: &mut Vec<T, N>, bytes: &[u8]) -> Option<()> {
    if bytes.len() % T::SIZE != 0 || bytes.len() / T::SIZE > N {
        return None;
    }
    for chunk in bytes.chunks_exact(T::SIZE) {
        batch.push(from_bytes(chunk)?).ok()?;
    }
    Some(())
}

/// Serde for a batch ([`heapless::Vec`]) of blocks, for `#[serde(with = "crate::block::batch")]`:
/// in binary formats one byte string of the elements' blocks back to back (its length is
/// `count * T::SIZE`); in human-readable formats an ordinary list.
pub(crate) mod batch {
    use super::*;

    #[inline]
    pub(crate) fn serialize<T, S, const N: usize>(batch: &Vec<T, N>, serializer: S) -> Result<S::Ok, S::Error>
    where
        T: FixedBlock + Serialize,
        S: Serializer,
    {
        if serializer.is_human_readable() {
            return batch.serialize(serializer);
        }
        const {
            assert!(
                N * T::SIZE <= MAX_BATCH_BYTES,
                "batch larger than its block buffer"
            )
        };
        // Stack buffers in three sizes, so that a batch of `u32`s does not clear room for
        // field-value pairs; the choice is made at compile time.
        if N * T::SIZE <= 128 {
            put_batch(batch, &mut [0u8; 128], serializer)
        } else if N * T::SIZE <= 256 {
            put_batch(batch, &mut [0u8; 256], serializer)
        } else {
            put_batch(batch, &mut [0u8; MAX_BATCH_BYTES], serializer)
        }
    }

    #[inline(always)]
    fn put_batch<T: FixedBlock, S: Serializer>(
        batch: &[T],
        buf: &mut [u8],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let bytes = buf
            .get_mut(..batch.len() * T::SIZE)
            .ok_or_else(|| serde::ser::Error::custom("batch larger than its block buffer"))?;
        for (chunk, item) in bytes.chunks_exact_mut(T::SIZE).zip(batch) {
            item.put(&mut Writer::new(chunk))
                .ok_or_else(|| serde::ser::Error::custom("block size"))?;
        }
        serializer.serialize_bytes(bytes)
    }

    #[inline]
    pub(crate) fn deserialize<'de, T, D, const N: usize>(deserializer: D) -> Result<Vec<T, N>, D::Error>
    where
        T: FixedBlock + Deserialize<'de>,
        D: Deserializer<'de>,
    {
        if deserializer.is_human_readable() {
            Vec::deserialize(deserializer)
        } else {
            deserializer.deserialize_bytes(BatchVisitor(PhantomData))
        }
    }

    struct BatchVisitor<T, const N: usize>(PhantomData<T>);

    impl<T: FixedBlock, const N: usize> Visitor<'_> for BatchVisitor<T, N> {
        type Value = Vec<T, N>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a byte string of at most {N} blocks of {} bytes", T::SIZE)
        }

        #[inline]
        fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Vec<T, N>, E> {
            let mut batch = Vec::new();
            take_batch(&mut batch, bytes).ok_or_else(|| E::invalid_length(bytes.len(), &self))?;
            Ok(batch)
        }
    }
}

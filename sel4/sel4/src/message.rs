//! Message info and badges.

use core::fmt;

use sel4_sys::{seL4_MessageInfo_t, seL4_Word};

/// The badge of a received message or signal: the value minted into the sender's capability
/// (for notifications, the OR of the badges of all signals since the last wait).
pub type Badge = seL4_Word;

/// The message info word of a message (`seL4_MessageInfo_t`): label, number of unwrapped
/// capabilities, number of extra capabilities and length in message registers.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MessageInfo(seL4_MessageInfo_t);

impl MessageInfo {
    /// Largest label (20 bits).
    pub const MAX_LABEL: seL4_Word = (1 << 20) - 1;
    /// Largest length in message registers (`seL4_MsgMaxLength`).
    pub const MAX_LENGTH: seL4_Word = sel4_sys::seL4_MsgMaxLength;
    /// Largest number of extra capabilities (`seL4_MsgMaxExtraCaps`).
    pub const MAX_EXTRA_CAPS: seL4_Word = sel4_sys::seL4_MsgMaxExtraCaps;

    /// A message info from its fields. Each is masked to its width in the word (label 20 bits,
    /// unwrapped caps 3, extra caps 2, length 7), as the kernel reads them; the length is not
    /// capped at [`MAX_LENGTH`](Self::MAX_LENGTH) (the kernel caps it).
    pub const fn new(
        label: seL4_Word,
        caps_unwrapped: seL4_Word,
        extra_caps: seL4_Word,
        length: seL4_Word,
    ) -> Self {
        Self(seL4_MessageInfo_t::new(label, caps_unwrapped, extra_caps, length))
    }

    /// A message of `length` words with `label` and no capabilities.
    pub const fn with_label(label: seL4_Word, length: seL4_Word) -> Self {
        Self::new(label, 0, 0, length)
    }

    /// The label (for a reply to an invocation: the error code).
    pub const fn label(self) -> seL4_Word {
        self.0.get_label()
    }

    /// Bitmask of the received extra capabilities that were unwrapped into badges.
    pub const fn caps_unwrapped(self) -> seL4_Word {
        self.0.get_capsUnwrapped()
    }

    /// Number of extra capabilities.
    pub const fn extra_caps(self) -> seL4_Word {
        self.0.get_extraCaps()
    }

    /// Number of message registers.
    pub const fn length(self) -> seL4_Word {
        self.0.get_length()
    }

    /// The raw bindings' value.
    pub const fn into_raw(self) -> seL4_MessageInfo_t {
        self.0
    }

    /// From the raw bindings' value.
    pub const fn from_raw(raw: seL4_MessageInfo_t) -> Self {
        Self(raw)
    }

    /// The word as the kernel passes it in `rsi`.
    pub const fn word(self) -> seL4_Word {
        self.0.words[0]
    }

    /// From the word the kernel passes in `rsi`.
    pub const fn from_word(word: seL4_Word) -> Self {
        Self(seL4_MessageInfo_t { words: [word] })
    }
}

impl fmt::Debug for MessageInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageInfo")
            .field("label", &self.label())
            .field("caps_unwrapped", &self.caps_unwrapped())
            .field("extra_caps", &self.extra_caps())
            .field("length", &self.length())
            .finish()
    }
}

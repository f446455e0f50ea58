//! Fixed-size byte newtypes (keys, hashes, signatures) with compact serde and printable forms.
//!
//! Ids are printed in base58 so they can be read aloud, copied from a
//! terminal and typed back without ambiguity between `0`/`O` or `l`/`I`.

use std::fmt;

/// Errors parsing a printable id or key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseIdError {
    /// The text is not base58.
    #[error("`{text}` is not a valid {what}: it should be base58 text such as `{example}`")]
    NotBase58 {
        /// What was being parsed.
        what: &'static str,
        /// The input, possibly shortened.
        text: String,
        /// An example of the expected form.
        example: &'static str,
    },
    /// The decoded bytes have the wrong length.
    #[error("`{text}` is not a valid {what}: it decodes to {got} bytes, expected {expected}")]
    WrongLength {
        /// What was being parsed.
        what: &'static str,
        /// The input, possibly shortened.
        text: String,
        /// Bytes decoded.
        got: usize,
        /// Bytes expected.
        expected: usize,
    },
}

/// Shortens user input echoed in an error so one bad argument never floods a terminal.
pub(crate) fn shorten(text: &str) -> String {
    if text.chars().count() <= 60 {
        text.to_string()
    } else {
        format!("{}...", text.chars().take(57).collect::<String>())
    }
}

/// Decodes base58 text to exactly `N` bytes.
pub(crate) fn decode_base58<const N: usize>(
    text: &str,
    what: &'static str,
    example: &'static str,
) -> Result<[u8; N], ParseIdError> {
    let bytes = bs58::decode(text.trim())
        .into_vec()
        .map_err(|_| ParseIdError::NotBase58 {
            what,
            text: shorten(text),
            example,
        })?;
    let got = bytes.len();
    bytes.try_into().map_err(|_| ParseIdError::WrongLength {
        what,
        text: shorten(text),
        got,
        expected: N,
    })
}

/// Defines a newtype over `[u8; N]` with serde as bytes, base58 Display/FromStr and Debug.
macro_rules! byte_newtype {
    ($(#[$meta:meta])* $name:ident, $len:expr, $what:expr, $example:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Length of the raw form in bytes.
            pub const LEN: usize = $len;

            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// The first eight characters of the printable form, for tables and logs.
            pub fn short(&self) -> String {
                self.to_string().chars().take(8).collect()
            }

            /// Builds the value from a slice, if it has the right length.
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                <[u8; $len]>::try_from(bytes).ok().map(Self)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&bs58::encode(&self.0).into_string())
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::bytes::ParseIdError;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                $crate::bytes::decode_base58::<$len>(text, $what, $example).map(Self)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.collect_str(self)
                } else {
                    s.serialize_bytes(&self.0)
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                    text.parse().map_err(serde::de::Error::custom)
                } else {
                    d.deserialize_bytes($crate::bytes::FixedBytesVisitor::<$len>)
                        .map(Self)
                }
            }
        }
    };
}
pub(crate) use byte_newtype;

/// Serde visitor for a fixed number of bytes, accepting both byte strings and sequences.
pub(crate) struct FixedBytesVisitor<const N: usize>;

impl<'de, const N: usize> serde::de::Visitor<'de> for FixedBytesVisitor<N> {
    type Value = [u8; N];

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{N} bytes")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        <[u8; N]>::try_from(v).map_err(|_| E::invalid_length(v.len(), &self))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = [0u8; N];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = seq
                .next_element()?
                .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
        }
        Ok(out)
    }
}

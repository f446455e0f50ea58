//! Interoperability with other open-hardware formats: pure mapping, no I/O.
//!
//! Each format reads text into a draft of a design plus a report of what it did with every
//! field, and writes a design back as text. Reading files and applying drafts to the store is
//! the node's job (`node/src/interop/`).

pub mod okh;

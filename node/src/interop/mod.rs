//! Importing from and exporting to other open-hardware formats: reading the files, storing
//! attachments and applying the pure mappings of `hedgerow_protocol::interop` to the store.

pub mod okh;

//! Hedgerow protocol.

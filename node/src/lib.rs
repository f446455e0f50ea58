//! Hedgerow node.

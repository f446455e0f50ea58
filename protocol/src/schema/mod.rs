//! Document kinds and their schemas.

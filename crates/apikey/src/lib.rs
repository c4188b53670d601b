//! API keys: recognisable, checksummed, hashed at rest, scoped, limited, revocable and rotatable.
//!
//! This crate is part of Palisade and has no web-framework dependency.

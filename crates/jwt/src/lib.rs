//! Hardened JWT validation, signing key sets and an OAuth 2.0 authorization core, on jsonwebtoken.
//!
//! This crate is part of Palisade and has no web-framework dependency.

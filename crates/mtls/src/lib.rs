//! Mutual TLS: rustls server configuration with client-certificate verification, CRLs, reload, and peer identities.
//!
//! This crate is part of Palisade and has no web-framework dependency.

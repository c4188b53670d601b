//! Security response headers, request ids, rate-limit header fields and RFC 9457 problem documents.
//!
//! This crate is part of Palisade and has no web-framework dependency.

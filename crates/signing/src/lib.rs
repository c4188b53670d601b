//! Request signing: the Palisade HMAC scheme, AWS Signature Version 4, RFC 9421 HTTP Message Signatures and webhook signatures.
//!
//! This crate is part of Palisade and has no web-framework dependency.

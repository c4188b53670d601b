//! Strict input at the boundary: bounded typed JSON, validation errors with client field names, injection, path-traversal and SSRF guards.
//!
//! This crate is part of Palisade and has no web-framework dependency.

//! Abuse detection: per-identity behaviour over sliding windows, brute-force defence and throttle or block decisions.
//!
//! This crate is part of Palisade and has no web-framework dependency.

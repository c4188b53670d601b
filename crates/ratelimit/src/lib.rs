//! Rate limiting: fixed and sliding windows, token and leaky buckets and GCRA, exact under concurrency, in memory and on Redis.
//!
//! This crate is part of Palisade and has no web-framework dependency.

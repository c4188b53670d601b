//! Tower layers and axum extractors that wire Palisade's crates into any axum or tower
//! service.
//!
//! This is the only library crate of Palisade that knows about HTTP frameworks; the core
//! crates it wires together know nothing of HTTP.

//! Shared helpers for Palisade's benchmarks.

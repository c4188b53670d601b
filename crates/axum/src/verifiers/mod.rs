//! [`Verifier`](crate::Verifier)s for Palisade's authentication crates, each behind the
//! feature of the crate's name.

#[cfg(feature = "apikey")]
mod apikey;

#[cfg(feature = "apikey")]
pub use apikey::ApiKeyVerifier;

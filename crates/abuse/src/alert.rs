//! Where alerts go when an identity is flagged.

use std::time::UNIX_EPOCH;

use crate::decision::Flag;

/// Receives a flag when an identity is newly flagged (not on every request while it
/// stays flagged). Implementations must be quick; hand slow work to a queue.
///
/// Any `Fn(&Flag) + Send + Sync` closure is a sink.
pub trait AlertSink: Send + Sync {
    /// Called once per new flag.
    fn alert(&self, flag: &Flag);
}

impl<F: Fn(&Flag) + Send + Sync> AlertSink for F {
    fn alert(&self, flag: &Flag) {
        self(flag);
    }
}

/// The default sink: one `tracing` warning per flag, target `palisade_abuse`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingSink;

impl AlertSink for TracingSink {
    fn alert(&self, flag: &Flag) {
        let until = flag
            .until
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        tracing::warn!(
            target: "palisade_abuse",
            identity = %flag.identity,
            action = flag.action.as_str(),
            reason = flag.reason.code(),
            detail = %flag.detail,
            until_unix = until,
            "identity flagged for abuse"
        );
    }
}

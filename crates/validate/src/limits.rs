/// Structural limits applied to a JSON body before any type sees it.
///
/// The defaults suit a typical API request: 1 MiB, depth 32, 256 keys per object,
/// 10 000 elements per array, strings up to 64 KiB, keys up to 256 bytes, and `__proto__`
/// refused as a key anywhere. Lengths are measured in bytes as sent (escapes included),
/// so that a limit is checked without decoding. Schema-level lengths ("`notes` up to 500
/// characters") belong in the type's `#[validate(length(..))]` rules instead.
///
/// ```
/// let limits = palisade_validate::Limits::default()
///     .max_body_bytes(64 * 1024)
///     .max_depth(8);
/// assert_eq!(limits.body_limit(), 64 * 1024);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub(crate) max_body_bytes: usize,
    pub(crate) max_depth: usize,
    pub(crate) max_keys: usize,
    pub(crate) max_array_len: usize,
    pub(crate) max_string_bytes: usize,
    pub(crate) max_key_bytes: usize,
    pub(crate) reject_proto_keys: bool,
}

/// serde_json stops at 128 levels on its own; a deeper limit would only trade our clear
/// error for its generic one.
const DEPTH_CEILING: usize = 128;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_depth: 32,
            max_keys: 256,
            max_array_len: 10_000,
            max_string_bytes: 64 * 1024,
            max_key_bytes: 256,
            reject_proto_keys: true,
        }
    }
}

impl Limits {
    /// The largest body accepted, in bytes; a larger one is [`Rejection::TooLarge`](crate::Rejection).
    #[must_use]
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// The deepest nesting of objects and arrays accepted (at most 128; 0 admits only scalars).
    #[must_use]
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth.min(DEPTH_CEILING);
        self
    }

    /// The most keys one object may hold.
    #[must_use]
    pub fn max_keys(mut self, keys: usize) -> Self {
        self.max_keys = keys;
        self
    }

    /// The most elements one array may hold.
    #[must_use]
    pub fn max_array_len(mut self, len: usize) -> Self {
        self.max_array_len = len;
        self
    }

    /// The longest string value, in bytes as sent between the quotes.
    #[must_use]
    pub fn max_string_bytes(mut self, bytes: usize) -> Self {
        self.max_string_bytes = bytes;
        self
    }

    /// The longest object key, in bytes as sent between the quotes.
    #[must_use]
    pub fn max_key_bytes(mut self, bytes: usize) -> Self {
        self.max_key_bytes = bytes;
        self
    }

    /// Whether a `__proto__` key is refused anywhere in a body (default: yes).
    ///
    /// No API needs such a key, and a JavaScript consumer that merges the document into an
    /// object can be made to change every object's prototype by one.
    #[must_use]
    pub fn reject_proto_keys(mut self, reject: bool) -> Self {
        self.reject_proto_keys = reject;
        self
    }

    /// The body limit in bytes, for a transport layer that wants to stop reading early.
    pub fn body_limit(&self) -> usize {
        self.max_body_bytes
    }
}

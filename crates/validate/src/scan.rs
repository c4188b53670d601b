//! A single pass over the raw bytes that enforces [`Limits`] and the parts of RFC 8259 that
//! serde leaves to chance (duplicate keys, lone surrogates), without allocating for the
//! common case. It is iterative, so a hostile nesting depth cannot overflow the stack.
//!
//! It runs before every typed parse, so it is built to cost a fraction of one: string
//! contents are skipped eight bytes at a time, keys are remembered as spans of the body,
//! and the open containers and their keys live on the stack until a document is unusually
//! deep or wide.

use std::borrow::Cow;
use std::collections::HashSet;

use crate::{Error, ErrorKind, Limits, swar};

/// Numbers longer than this are refused: no real quantity needs more digits, and long
/// mantissas are a cheap way to make a parser work.
const MAX_NUMBER_BYTES: usize = 64;

/// Objects with more keys than this switch from a linear duplicate search to a hash set.
const LINEAR_KEYS: usize = 16;

/// Open containers, and keys of open objects, held without allocating; more spill to the
/// heap.
const INLINE_FRAMES: usize = 16;
const INLINE_KEYS: usize = 32;

#[derive(Clone, Copy, Default)]
struct Frame {
    object: bool,
    count: usize,
    key_base: usize,
}

/// A key of an open object: a span of the body, or of `Scanner::decoded` when the key held
/// escapes (so that `"a"` and `"\u0061"` compare equal).
#[derive(Clone, Copy, Default)]
struct Key {
    start: usize,
    end: usize,
    decoded: bool,
}

/// A stack whose first `N` elements live inline.
struct InlineStack<T, const N: usize> {
    inline: [T; N],
    len: usize,
    spill: Vec<T>,
}

impl<T: Copy + Default, const N: usize> InlineStack<T, N> {
    fn new() -> Self {
        Self {
            inline: [T::default(); N],
            len: 0,
            spill: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn push(&mut self, value: T) {
        match self.inline.get_mut(self.len) {
            Some(slot) => *slot = value,
            None => self.spill.push(value),
        }
        self.len += 1;
    }

    fn get(&self, i: usize) -> Option<T> {
        if i >= self.len {
            return None;
        }
        self.inline
            .get(i)
            .or_else(|| self.spill.get(i - N))
            .copied()
    }

    fn last(&self) -> Option<T> {
        self.get(self.len.checked_sub(1)?)
    }

    fn last_mut(&mut self) -> Option<&mut T> {
        let i = self.len.checked_sub(1)?;
        match self.inline.get_mut(i) {
            Some(slot) => Some(slot),
            None => self.spill.get_mut(i - N),
        }
    }

    fn truncate(&mut self, len: usize) {
        if len < self.len {
            self.len = len;
            self.spill.truncate(len.saturating_sub(N));
        }
    }

    fn pop(&mut self) -> Option<T> {
        let last = self.last()?;
        self.truncate(self.len - 1);
        Some(last)
    }
}

/// Why the scan stopped, kept small so that results travel in registers; the field path
/// is added once, at the top, from the scanner's state at that moment.
#[derive(Clone, Copy)]
enum Fail {
    Kind(ErrorKind),
    LongNumber,
}

const SYNTAX: Fail = Fail::Kind(ErrorKind::Syntax);

struct Scanner<'a, 'l> {
    b: &'a [u8],
    limits: &'l Limits,
    frames: InlineStack<Frame, INLINE_FRAMES>,
    keys: InlineStack<Key, INLINE_KEYS>,
    /// Keys that held escapes, decoded, one after another.
    decoded: Vec<u8>,
    /// Hash sets of the open objects wider than [`LINEAR_KEYS`], innermost last, each with
    /// the depth of its object.
    sets: Vec<(usize, HashSet<Cow<'a, [u8]>>)>,
}

/// Checks `b` (already known to be UTF-8) against `limits` and the JSON grammar.
pub(crate) fn scan(b: &[u8], limits: &Limits) -> Result<(), Error> {
    let mut scanner = Scanner {
        b,
        limits,
        frames: InlineStack::new(),
        keys: InlineStack::new(),
        decoded: Vec::new(),
        sets: Vec::new(),
    };
    scanner.run().map_err(|fail| scanner.error(fail))
}

#[inline]
fn ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// The index of the first byte at or after `j` that ends the plain part of a string: a
/// quote, a backslash or a control character (or `b.len()`).
#[inline]
fn skip_plain(b: &[u8], mut j: usize) -> usize {
    while let Some(word) = swar::word(b, j) {
        let special = swar::equal(word, b'"') | swar::equal(word, b'\\') | swar::below(word, 0x20);
        if special != 0 {
            return j + swar::first(special);
        }
        j += 8;
    }
    while let Some(&c) = b.get(j) {
        if c == b'"' || c == b'\\' || c < 0x20 {
            break;
        }
        j += 1;
    }
    j
}

fn hex4(b: &[u8], i: usize) -> Option<u32> {
    let digits = b.get(i..i.checked_add(4)?)?;
    let mut v = 0u32;
    for d in digits {
        v = v * 16 + char::from(*d).to_digit(16)?;
    }
    Some(v)
}

impl<'a> Scanner<'a, '_> {
    #[cold]
    #[inline(never)]
    fn error(&self, fail: Fail) -> Error {
        let e = match fail {
            Fail::Kind(kind) => Error::new(kind),
            Fail::LongNumber => Error::new(ErrorKind::StringTooLong).with_detail("number"),
        };
        let path = self.path();
        if path.is_empty() {
            e
        } else {
            e.with_field(path)
        }
    }

    /// The dotted path of the value being scanned, built only when reporting an error.
    fn path(&self) -> String {
        let mut out = String::new();
        for frame in (0..self.frames.len()).filter_map(|d| self.frames.get(d)) {
            if frame.count == 0 {
                break;
            }
            if !out.is_empty() {
                out.push('.');
            }
            if frame.object {
                if let Some(key) = self.keys.get(frame.key_base + frame.count - 1) {
                    out.push_str(&String::from_utf8_lossy(self.key_bytes(key)));
                }
            } else {
                out.push_str(&(frame.count - 1).to_string());
            }
        }
        out
    }

    #[inline]
    fn key_bytes(&self, key: Key) -> &[u8] {
        let source = if key.decoded { &self.decoded } else { self.b };
        source.get(key.start..key.end).unwrap_or_default()
    }

    /// A key as a hash set holds it: borrowed from the body when it can be.
    fn key_cow(b: &'a [u8], decoded: &[u8], key: Key) -> Cow<'a, [u8]> {
        if key.decoded {
            Cow::Owned(decoded.get(key.start..key.end).unwrap_or_default().to_vec())
        } else {
            Cow::Borrowed(b.get(key.start..key.end).unwrap_or_default())
        }
    }

    fn run(&mut self) -> Result<(), Fail> {
        let b = self.b;
        let mut i = ws(b, 0);
        // Whether `i` starts a member of the innermost container (after `{`, `[` or `,`).
        // One call site for `next_member`, so that it is inlined.
        let mut member = false;
        loop {
            if member {
                i = self.next_member(i)?;
            }
            match b.get(i) {
                Some(b'"') => i = self.string(i, self.limits.max_string_bytes)?.0,
                Some(b'-' | b'0'..=b'9') => i = self.number(i)?,
                Some(open @ (b'{' | b'[')) => {
                    if self.frames.len() >= self.limits.max_depth {
                        return Err(Fail::Kind(ErrorKind::DepthExceeded));
                    }
                    let object = *open == b'{';
                    self.frames.push(Frame {
                        object,
                        count: 0,
                        key_base: self.keys.len(),
                    });
                    i = ws(b, i + 1);
                    let close = if object { b'}' } else { b']' };
                    if b.get(i) == Some(&close) {
                        self.pop();
                        i += 1;
                    } else {
                        member = true;
                        continue;
                    }
                }
                Some(b't') => i = literal(b, i, b"true")?,
                Some(b'f') => i = literal(b, i, b"false")?,
                Some(b'n') => i = literal(b, i, b"null")?,
                _ => return Err(SYNTAX),
            }
            // After a complete value: close containers or move to the next member.
            member = loop {
                i = ws(b, i);
                let Some(top) = self.frames.last() else {
                    return if i == b.len() { Ok(()) } else { Err(SYNTAX) };
                };
                match b.get(i) {
                    Some(b',') => {
                        i = ws(b, i + 1);
                        break true;
                    }
                    Some(b'}') if top.object => {
                        self.pop();
                        i += 1;
                    }
                    Some(b']') if !top.object => {
                        self.pop();
                        i += 1;
                    }
                    _ => return Err(SYNTAX),
                }
            };
        }
    }

    #[inline]
    fn pop(&mut self) {
        let depth = self.frames.len();
        if let Some(frame) = self.frames.pop() {
            self.keys.truncate(frame.key_base);
            if self.sets.last().is_some_and(|(d, _)| *d == depth) {
                self.sets.pop();
            }
        }
    }

    /// Starts the next member of the innermost container at `i`: for an array, counts an
    /// element; for an object, reads `"key" :`. Returns where the value starts.
    #[inline]
    fn next_member(&mut self, i: usize) -> Result<usize, Fail> {
        let max_array_len = self.limits.max_array_len;
        let Some(top) = self.frames.last_mut() else {
            return Err(SYNTAX);
        };
        if top.object {
            return self.next_key(i);
        }
        top.count += 1;
        if top.count > max_array_len {
            // Report the array itself, not its first excess element.
            top.count = 0;
            return Err(Fail::Kind(ErrorKind::ArrayTooLong));
        }
        Ok(i)
    }

    /// Reads `"key" :` at `i` in the innermost object; returns where the value starts.
    #[inline]
    fn next_key(&mut self, i: usize) -> Result<usize, Fail> {
        let max_keys = self.limits.max_keys;
        let Some(top) = self.frames.last_mut() else {
            return Err(SYNTAX);
        };
        if top.count >= max_keys {
            top.count = 0;
            return Err(Fail::Kind(ErrorKind::TooManyKeys));
        }
        let Frame {
            count, key_base, ..
        } = *top;
        if self.b.get(i) != Some(&b'"') {
            return Err(SYNTAX);
        }
        let (end, escaped) = self.string(i, self.limits.max_key_bytes)?;
        let key = if escaped {
            let start = self.decoded.len();
            unescape_into(
                self.b.get(i + 1..end - 1).unwrap_or_default(),
                &mut self.decoded,
            );
            Key {
                start,
                end: self.decoded.len(),
                decoded: true,
            }
        } else {
            Key {
                start: i + 1,
                end: end - 1,
                decoded: false,
            }
        };
        let depth = self.frames.len();
        let duplicate = match self.sets.last_mut() {
            Some((d, set)) if *d == depth => !set.insert(Self::key_cow(self.b, &self.decoded, key)),
            _ => {
                let bytes = self.key_bytes(key);
                let duplicate = (key_base..key_base + count)
                    .filter_map(|k| self.keys.get(k))
                    // Lengths first: most keys of an object differ in length.
                    .any(|seen| {
                        seen.end - seen.start == bytes.len() && self.key_bytes(seen) == bytes
                    });
                if !duplicate && count + 1 > LINEAR_KEYS {
                    let set = (key_base..key_base + count)
                        .filter_map(|k| self.keys.get(k))
                        .chain([key])
                        .map(|k| Self::key_cow(self.b, &self.decoded, k))
                        .collect();
                    self.sets.push((depth, set));
                }
                duplicate
            }
        };
        let proto = self.limits.reject_proto_keys
            && key.end - key.start == 9
            && self.key_bytes(key) == b"__proto__";
        if let Some(top) = self.frames.last_mut() {
            top.count += 1;
        }
        self.keys.push(key);
        if duplicate {
            return Err(Fail::Kind(ErrorKind::DuplicateKey));
        }
        if proto {
            return Err(Fail::Kind(ErrorKind::ForbiddenKey));
        }
        let j = ws(self.b, end);
        if self.b.get(j) != Some(&b':') {
            return Err(SYNTAX);
        }
        Ok(ws(self.b, j + 1))
    }

    /// Scans the string starting at the quote at `i`; returns the index after the closing
    /// quote and whether it holds escapes.
    #[inline(always)]
    fn string(&self, i: usize, max: usize) -> Result<(usize, bool), Fail> {
        let b = self.b;
        let mut j = i + 1;
        let mut escaped = false;
        loop {
            j = skip_plain(b, j);
            // Checked before the byte that stopped the skip, so that a long string is
            // refused as long even when it is also unterminated or badly escaped.
            if j - i - 1 > max {
                return Err(Fail::Kind(ErrorKind::StringTooLong));
            }
            match b.get(j) {
                Some(b'"') => return Ok((j + 1, escaped)),
                Some(b'\\') => {
                    escaped = true;
                    j = escape(b, j)?;
                }
                // The end of the body, or a control character.
                _ => return Err(SYNTAX),
            }
        }
    }

    #[inline]
    fn number(&self, i: usize) -> Result<usize, Fail> {
        let b = self.b;
        let digits = |mut j: usize| {
            let start = j;
            while let Some(b'0'..=b'9') = b.get(j) {
                j += 1;
            }
            (j, j > start)
        };
        let mut j = i;
        if b.get(j) == Some(&b'-') {
            j += 1;
        }
        match b.get(j) {
            Some(b'0') => j += 1,
            Some(b'1'..=b'9') => j = digits(j).0,
            _ => return Err(SYNTAX),
        }
        if b.get(j) == Some(&b'.') {
            let (k, any) = digits(j + 1);
            if !any {
                return Err(SYNTAX);
            }
            j = k;
        }
        if let Some(b'e' | b'E') = b.get(j) {
            j += 1;
            if let Some(b'+' | b'-') = b.get(j) {
                j += 1;
            }
            let (k, any) = digits(j);
            if !any {
                return Err(SYNTAX);
            }
            j = k;
        }
        if j - i > MAX_NUMBER_BYTES {
            return Err(Fail::LongNumber);
        }
        Ok(j)
    }
}

/// Checks the escape at the backslash at `j`; returns the index after it.
#[inline(never)]
fn escape(b: &[u8], j: usize) -> Result<usize, Fail> {
    match b.get(j + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(j + 2),
        Some(b'u') => {
            let unit = hex4(b, j + 2).ok_or(SYNTAX)?;
            let j = j + 6;
            if (0xD800..0xDC00).contains(&unit) {
                let low = match (b.get(j), b.get(j + 1)) {
                    (Some(b'\\'), Some(b'u')) => hex4(b, j + 2),
                    _ => None,
                };
                match low {
                    Some(0xDC00..0xE000) => Ok(j + 6),
                    _ => Err(SYNTAX),
                }
            } else if (0xDC00..0xE000).contains(&unit) {
                Err(SYNTAX)
            } else {
                Ok(j)
            }
        }
        _ => Err(SYNTAX),
    }
}

fn literal(b: &[u8], i: usize, word: &[u8]) -> Result<usize, Fail> {
    if b.get(i..i + word.len()) == Some(word) {
        Ok(i + word.len())
    } else {
        Err(SYNTAX)
    }
}

/// Decodes the escapes of a key the scanner has already checked onto `out`, so that `"a"`
/// and `"\u0061"` are seen as the same key.
fn unescape_into(raw: &[u8], out: &mut Vec<u8>) {
    out.reserve(raw.len());
    let mut i = 0;
    while let Some(&c) = raw.get(i) {
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let decoded = match raw.get(i + 1) {
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let unit = hex4(raw, i + 2).unwrap_or(0xFFFD);
                i += 4;
                if (0xD800..0xDC00).contains(&unit) {
                    let low = hex4(raw, i + 4).unwrap_or(0xDC00);
                    i += 6;
                    char::from_u32(
                        0x10000 + ((unit - 0xD800) << 10) + (low.wrapping_sub(0xDC00) & 0x3FF),
                    )
                    .unwrap_or('\u{FFFD}')
                } else {
                    char::from_u32(unit).unwrap_or('\u{FFFD}')
                }
            }
            Some(&other) => char::from(other),
            None => break,
        };
        let mut buf = [0u8; 4];
        out.extend_from_slice(decoded.encode_utf8(&mut buf).as_bytes());
        i += 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(s: &str) -> Option<ErrorKind> {
        scan(s.as_bytes(), &Limits::default())
            .err()
            .map(|e| e.kind())
    }

    #[test]
    fn accepts_valid_json() {
        for s in [
            "{}",
            "[]",
            "0",
            "-0.5e+10",
            "\"x\"",
            "true",
            "null",
            " {\"a\": [1, 2, {\"b\": null}]} ",
            "{\"a\":\"\\ud83d\\ude00\"}",
            "{\"\\u0061\":1,\"b\":2}",
            "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]",
        ] {
            assert_eq!(kind(s), None, "{s}");
        }
    }

    #[test]
    fn rejects_syntax_errors() {
        for s in [
            "",
            "{",
            "[1,]",
            "{\"a\":1,}",
            "01",
            "1.",
            ".5",
            "1e",
            "+1",
            "nul",
            "[1 2]",
            "{\"a\" 1}",
            "{a:1}",
            "'a'",
            "\"\\x\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"a\nb\"",
            "1 2",
            "\u{feff}{}",
            "[1]]",
            "{\"a\":1}}",
            "NaN",
            "Infinity",
        ] {
            assert_eq!(kind(s), Some(ErrorKind::Syntax), "{s:?}");
        }
    }

    #[test]
    fn duplicate_keys_including_escaped_and_many() {
        assert_eq!(kind("{\"a\":1,\"a\":2}"), Some(ErrorKind::DuplicateKey));
        assert_eq!(
            kind("{\"a\":1,\"\\u0061\":2}"),
            Some(ErrorKind::DuplicateKey)
        );
        let mut many: Vec<String> = (0..40).map(|i| format!("\"k{i}\":{i}")).collect();
        assert_eq!(kind(&format!("{{{}}}", many.join(","))), None);
        many.push("\"k3\":0".into());
        assert_eq!(
            kind(&format!("{{{}}}", many.join(","))),
            Some(ErrorKind::DuplicateKey)
        );
        // The same key in sibling objects is fine.
        assert_eq!(kind("[{\"a\":1},{\"a\":2}]"), None);
        let e = scan(b"{\"x\":[{\"a\":1},{\"a\":1,\"a\":2}]}", &Limits::default()).unwrap_err();
        assert_eq!(e.field(), Some("x.1.a"));
    }

    #[test]
    fn limits() {
        let l = Limits::default()
            .max_depth(2)
            .max_keys(2)
            .max_array_len(2)
            .max_string_bytes(3)
            .max_key_bytes(2);
        let k = |s: &str| scan(s.as_bytes(), &l).err().map(|e| e.kind());
        assert_eq!(k("[[1]]"), None);
        assert_eq!(k("[[[1]]]"), Some(ErrorKind::DepthExceeded));
        assert_eq!(k("{\"a\":1,\"b\":2}"), None);
        assert_eq!(k("{\"a\":1,\"b\":2,\"c\":3}"), Some(ErrorKind::TooManyKeys));
        assert_eq!(k("[1,2,3]"), Some(ErrorKind::ArrayTooLong));
        assert_eq!(k("\"abc\""), None);
        assert_eq!(k("\"abcd\""), Some(ErrorKind::StringTooLong));
        assert_eq!(k("{\"abc\":1}"), Some(ErrorKind::StringTooLong));
        assert_eq!(kind(&"1".repeat(65)), Some(ErrorKind::StringTooLong));
    }

    #[test]
    fn proto_key_refused_even_escaped() {
        assert_eq!(
            kind("{\"a\":{\"__proto__\":{}}}"),
            Some(ErrorKind::ForbiddenKey)
        );
        assert_eq!(
            kind("{\"__pro\\u0074o__\":1}"),
            Some(ErrorKind::ForbiddenKey)
        );
        let off = Limits::default().reject_proto_keys(false);
        assert!(scan(b"{\"__proto__\":1}", &off).is_ok());
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let s = "[".repeat(100_000);
        assert_eq!(kind(&s), Some(ErrorKind::DepthExceeded));
    }
}

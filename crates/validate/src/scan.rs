//! A single pass over the raw bytes that enforces [`Limits`] and the parts of RFC 8259 that
//! serde leaves to chance (duplicate keys, lone surrogates), without allocating for the
//! common case. It is iterative, so a hostile nesting depth cannot overflow the stack.

use std::borrow::Cow;
use std::collections::HashSet;

use crate::{Error, ErrorKind, Limits};

/// Numbers longer than this are refused: no real quantity needs more digits, and long
/// mantissas are a cheap way to make a parser work.
const MAX_NUMBER_BYTES: usize = 64;

/// Objects with more keys than this switch from a linear duplicate search to a hash set.
const LINEAR_KEYS: usize = 16;

struct Frame<'a> {
    object: bool,
    count: usize,
    key_base: usize,
    set: Option<HashSet<Cow<'a, [u8]>>>,
}

struct Scanner<'a, 'l> {
    b: &'a [u8],
    limits: &'l Limits,
    stack: Vec<Frame<'a>>,
    keys: Vec<Cow<'a, [u8]>>,
}

/// Checks `b` (already known to be UTF-8) against `limits` and the JSON grammar.
pub(crate) fn scan(b: &[u8], limits: &Limits) -> Result<(), Error> {
    Scanner {
        b,
        limits,
        stack: Vec::new(),
        keys: Vec::new(),
    }
    .run()
}

fn ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
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
    fn err(&self, kind: ErrorKind) -> Error {
        let path = self.path();
        let e = Error::new(kind);
        if path.is_empty() {
            e
        } else {
            e.with_field(path)
        }
    }

    /// The dotted path of the value being scanned, built only when reporting an error.
    fn path(&self) -> String {
        let mut out = String::new();
        for frame in &self.stack {
            if frame.count == 0 {
                break;
            }
            if !out.is_empty() {
                out.push('.');
            }
            if frame.object {
                if let Some(key) = self.keys.get(frame.key_base + frame.count - 1) {
                    out.push_str(&String::from_utf8_lossy(key));
                }
            } else {
                out.push_str(&(frame.count - 1).to_string());
            }
        }
        out
    }

    fn run(mut self) -> Result<(), Error> {
        let b = self.b;
        let mut i = ws(b, 0);
        'value: loop {
            match b.get(i) {
                Some(open @ (b'{' | b'[')) => {
                    if self.stack.len() >= self.limits.max_depth {
                        return Err(self.err(ErrorKind::DepthExceeded));
                    }
                    let object = *open == b'{';
                    self.stack.push(Frame {
                        object,
                        count: 0,
                        key_base: self.keys.len(),
                        set: None,
                    });
                    i = ws(b, i + 1);
                    let close = if object { b'}' } else { b']' };
                    if b.get(i) == Some(&close) {
                        self.pop();
                        i += 1;
                    } else {
                        i = self.next_member(i)?;
                        continue 'value;
                    }
                }
                Some(b'"') => {
                    let (end, _) = self.string(i, self.limits.max_string_bytes)?;
                    i = end;
                }
                Some(b'-' | b'0'..=b'9') => i = self.number(i)?,
                Some(b't') => i = self.literal(i, b"true")?,
                Some(b'f') => i = self.literal(i, b"false")?,
                Some(b'n') => i = self.literal(i, b"null")?,
                _ => return Err(self.err(ErrorKind::Syntax)),
            }
            // After a complete value: close containers or move to the next member.
            loop {
                i = ws(b, i);
                let Some(top) = self.stack.last() else {
                    return if i == b.len() {
                        Ok(())
                    } else {
                        Err(self.err(ErrorKind::Syntax))
                    };
                };
                let object = top.object;
                match b.get(i) {
                    Some(b',') => {
                        i = self.next_member(ws(b, i + 1))?;
                        continue 'value;
                    }
                    Some(b'}') if object => {
                        self.pop();
                        i += 1;
                    }
                    Some(b']') if !object => {
                        self.pop();
                        i += 1;
                    }
                    _ => return Err(self.err(ErrorKind::Syntax)),
                }
            }
        }
    }

    fn pop(&mut self) {
        if let Some(frame) = self.stack.pop() {
            self.keys.truncate(frame.key_base);
        }
    }

    /// Starts the next member of the innermost container at `i`: for an array, counts an
    /// element; for an object, reads `"key" :`. Returns where the value starts.
    fn next_member(&mut self, i: usize) -> Result<usize, Error> {
        let Some(top) = self.stack.last_mut() else {
            return Err(Error::new(ErrorKind::Syntax));
        };
        if !top.object {
            top.count += 1;
            if top.count > self.limits.max_array_len {
                // Report the array itself, not its first excess element.
                top.count = 0;
                return Err(self.err(ErrorKind::ArrayTooLong));
            }
            return Ok(i);
        }
        if top.count >= self.limits.max_keys {
            top.count = 0;
            return Err(self.err(ErrorKind::TooManyKeys));
        }
        if self.b.get(i) != Some(&b'"') {
            return Err(self.err(ErrorKind::Syntax));
        }
        let (end, escaped) = self.string(i, self.limits.max_key_bytes)?;
        let raw = self.b.get(i + 1..end - 1).unwrap_or_default();
        let key: Cow<'a, [u8]> = if escaped {
            Cow::Owned(unescape(raw))
        } else {
            Cow::Borrowed(raw)
        };
        let Some(top) = self.stack.last_mut() else {
            return Err(Error::new(ErrorKind::Syntax));
        };
        let base = top.key_base;
        let count = top.count;
        let duplicate = match &mut top.set {
            Some(set) => !set.insert(key.clone()),
            None => {
                let dup = self
                    .keys
                    .get(base..)
                    .is_some_and(|seen| seen.contains(&key));
                if !dup && count + 1 > LINEAR_KEYS {
                    let mut set: HashSet<Cow<'a, [u8]>> = self
                        .keys
                        .get(base..)
                        .unwrap_or_default()
                        .iter()
                        .cloned()
                        .collect();
                    set.insert(key.clone());
                    top.set = Some(set);
                }
                dup
            }
        };
        let proto = self.limits.reject_proto_keys && key.as_ref() == b"__proto__";
        top.count += 1;
        self.keys.push(key);
        if duplicate {
            return Err(self.err(ErrorKind::DuplicateKey));
        }
        if proto {
            return Err(self.err(ErrorKind::ForbiddenKey));
        }
        let j = ws(self.b, end);
        if self.b.get(j) != Some(&b':') {
            return Err(self.err(ErrorKind::Syntax));
        }
        Ok(ws(self.b, j + 1))
    }

    /// Scans the string starting at the quote at `i`; returns the index after the closing
    /// quote and whether it holds escapes.
    fn string(&self, i: usize, max: usize) -> Result<(usize, bool), Error> {
        let b = self.b;
        let mut j = i + 1;
        let mut escaped = false;
        loop {
            // Fast path: skip the plain bytes up to the next quote, escape or control.
            let plain = b.get(j..).unwrap_or_default();
            j += plain
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
                .unwrap_or(plain.len());
            if j - i - 1 > max {
                return Err(self.err(ErrorKind::StringTooLong));
            }
            match b.get(j) {
                None => return Err(self.err(ErrorKind::Syntax)),
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    match b.get(j + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => j += 2,
                        Some(b'u') => {
                            let unit = hex4(b, j + 2).ok_or_else(|| self.err(ErrorKind::Syntax))?;
                            j += 6;
                            if (0xD800..0xDC00).contains(&unit) {
                                let low = match (b.get(j), b.get(j + 1)) {
                                    (Some(b'\\'), Some(b'u')) => hex4(b, j + 2),
                                    _ => None,
                                };
                                match low {
                                    Some(0xDC00..0xE000) => j += 6,
                                    _ => return Err(self.err(ErrorKind::Syntax)),
                                }
                            } else if (0xDC00..0xE000).contains(&unit) {
                                return Err(self.err(ErrorKind::Syntax));
                            }
                        }
                        _ => return Err(self.err(ErrorKind::Syntax)),
                    }
                }
                Some(0..=0x1f) => return Err(self.err(ErrorKind::Syntax)),
                Some(_) => j += 1,
            }
            if j - i - 1 > max {
                return Err(self.err(ErrorKind::StringTooLong));
            }
        }
        if j - i - 1 > max {
            return Err(self.err(ErrorKind::StringTooLong));
        }
        Ok((j + 1, escaped))
    }

    fn number(&self, i: usize) -> Result<usize, Error> {
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
            _ => return Err(self.err(ErrorKind::Syntax)),
        }
        if b.get(j) == Some(&b'.') {
            let (k, any) = digits(j + 1);
            if !any {
                return Err(self.err(ErrorKind::Syntax));
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
                return Err(self.err(ErrorKind::Syntax));
            }
            j = k;
        }
        if j - i > MAX_NUMBER_BYTES {
            return Err(self.err(ErrorKind::StringTooLong).with_detail("number"));
        }
        Ok(j)
    }

    fn literal(&self, i: usize, word: &[u8]) -> Result<usize, Error> {
        if self.b.get(i..i + word.len()) == Some(word) {
            Ok(i + word.len())
        } else {
            Err(self.err(ErrorKind::Syntax))
        }
    }
}

/// Decodes the escapes of a key the scanner has already checked, so that `"a"` and
/// `"\u0061"` are seen as the same key.
fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
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
    out
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

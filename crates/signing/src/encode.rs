//! The byte-level canonicalization rules of Signature Version 4.

use std::borrow::Cow;

/// How a literal `+` in the query string is read when canonicalizing.
///
/// Implementations disagree: botocore (and so the AWS CLI and boto3) keeps a literal `+`
/// as `+` in the canonical query, while the `aws-sigv4` crate reads the query as
/// `application/x-www-form-urlencoded` and turns `+` into a space (`%20`).
///
/// The default, [`PlusPolicy::Literal`], follows botocore. It is also the only choice that
/// keeps canonicalization injective: `+`, `%2B` and `%20` stay three distinct canonical
/// forms, so a signature over one can never be replayed as another that the application
/// might decode differently. [`PlusPolicy::Space`] interoperates with clients built on the
/// `aws-sigv4` crate; with it, `a+b` and `a%20b` share a signature, so use it only when
/// the application also decodes `+` as a space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlusPolicy {
    /// `+` stays `+` in the canonical query (botocore).
    #[default]
    Literal,
    /// `+` is a space, canonicalized as `%20` (form encoding, the `aws-sigv4` crate).
    Space,
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";
const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

/// Where canonical text goes: a `String` (signing, debugging output) or, on the
/// verifier's hot path, straight into a hash, so that no canonical request is built.
pub(crate) trait Sink {
    /// Appends text.
    fn put(&mut self, s: &str);
    /// Appends one ASCII byte (callers only ever pass ASCII).
    fn put_ascii(&mut self, b: u8);
    /// Appends a hash in hex; byte sinks skip the UTF-8 check of `as_str`.
    fn put_hex(&mut self, hex: &Hex32) {
        self.put(hex.as_str());
    }
}

impl Sink for String {
    fn put(&mut self, s: &str) {
        self.push_str(s);
    }

    fn put_ascii(&mut self, b: u8) {
        debug_assert!(b.is_ascii());
        self.push(char::from(b));
    }
}

/// RFC 3986 unreserved bytes, as a table: every byte of every path and query goes
/// through it.
static UNRESERVED: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
        i += 1;
    }
    table
};

pub(crate) fn is_unreserved(b: u8) -> bool {
    UNRESERVED[usize::from(b)]
}

fn push_pct(out: &mut impl Sink, b: u8) {
    out.put_ascii(b'%');
    out.put_ascii(HEX[usize::from(b >> 4)]);
    out.put_ascii(HEX[usize::from(b & 0x0f)]);
}

/// URI-encodes every byte except the unreserved set (and `/` when `keep_slash`).
pub(crate) fn uri_encode(out: &mut impl Sink, input: &str, keep_slash: bool) {
    let keep = |b: u8| is_unreserved(b) || (keep_slash && b == b'/');
    // Already encoded (the common case): one copy instead of a byte at a time.
    if input.bytes().all(keep) {
        out.put(input);
        return;
    }
    for b in input.bytes() {
        if keep(b) {
            out.put_ascii(b);
        } else {
            push_pct(out, b);
        }
    }
}

/// An encoded string for a whole value (query parameter values in presigned URLs).
pub(crate) fn uri_encode_str(input: &str) -> String {
    let mut out = String::with_capacity(input.len() + 8);
    uri_encode(&mut out, input, false);
    out
}

/// Whether [`normalize_path`] would return `path` unchanged: it starts with `/`, and has
/// no empty, `.` or `..` segment (a trailing `/` is kept by the normalization).
fn is_normalized_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    rest.as_bytes()
        .split(|&b| b == b'/')
        .all(|seg| !matches!(seg, b"" | b"." | b".."))
}

/// RFC 3986 section 5.2.4 dot-segment removal plus the collapse of empty segments that
/// AWS requires, exactly as botocore's `remove_dot_segments` does it.
pub(crate) fn normalize_path(path: &str) -> Cow<'_, str> {
    if is_normalized_path(path) {
        return Cow::Borrowed(path);
    }
    Cow::Owned(remove_dot_segments(path))
}

fn remove_dot_segments(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    if path.starts_with('/') {
        out.push('/');
    }
    out.push_str(&segments.join("/"));
    if path.ends_with('/') && !segments.is_empty() {
        out.push('/');
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Path bytes kept verbatim on the single-encoding (S3) path: a well-formed wire path
/// passes through unchanged; anything else is percent-encoded so the result is defined.
fn is_path_verbatim(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'/' | b'%'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}

/// The canonical URI.
pub(crate) fn canonical_path(
    out: &mut impl Sink,
    path: &str,
    double_encode: bool,
    normalize: bool,
) {
    if double_encode {
        if normalize {
            uri_encode(out, &normalize_path(path), true);
        } else if path.is_empty() {
            out.put_ascii(b'/');
        } else {
            uri_encode(out, path, true);
        }
    } else if path.is_empty() {
        out.put_ascii(b'/');
    } else if path.bytes().all(is_path_verbatim) {
        out.put(path);
    } else {
        for b in path.bytes() {
            if is_path_verbatim(b) {
                out.put_ascii(b);
            } else {
                push_pct(out, b);
            }
        }
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Whether [`canonical_component`] would return `input` unchanged: only unreserved
/// bytes, a literal `+` kept as such, and upper-case escapes of bytes that must stay
/// escaped.
fn is_canonical_component(input: &str, plus: PlusPolicy) -> bool {
    // Plain names and values (the common case) in one vectorizable pass.
    if input.bytes().fold(true, |ok, b| ok & is_unreserved(b)) {
        return true;
    }
    let b = input.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'%' => {
                let upper_hex = |x: Option<&u8>| matches!(x, Some(b'0'..=b'9' | b'A'..=b'F'));
                if !(upper_hex(b.get(i + 1)) && upper_hex(b.get(i + 2))) {
                    return false;
                }
                let hi = b.get(i + 1).copied().and_then(hex_val).unwrap_or(0);
                let lo = b.get(i + 2).copied().and_then(hex_val).unwrap_or(0);
                if is_unreserved((hi << 4) | lo) {
                    return false;
                }
                i += 3;
                continue;
            }
            b'+' if plus == PlusPolicy::Literal => {}
            c if is_unreserved(c) => {}
            _ => return false,
        }
        i += 1;
    }
    true
}

/// [`canonical_component`], borrowing `input` when it is already canonical.
fn canonical_component_cow(input: &str, plus: PlusPolicy) -> Cow<'_, str> {
    if is_canonical_component(input, plus) {
        return Cow::Borrowed(input);
    }
    let mut out = String::with_capacity(input.len() + 8);
    canonical_component(&mut out, input, plus);
    Cow::Owned(out)
}

/// Normalizes one already-encoded query component: escapes are decoded and re-encoded
/// with upper-case hex, unreserved bytes are never escaped, all other bytes are.
fn canonical_component(out: &mut String, input: &str, plus: PlusPolicy) {
    let b = input.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'%' => {
                let hi = b.get(i + 1).copied().and_then(hex_val);
                let lo = b.get(i + 2).copied().and_then(hex_val);
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    let d = (hi << 4) | lo;
                    if is_unreserved(d) {
                        out.push(char::from(d));
                    } else {
                        push_pct(out, d);
                    }
                    i += 3;
                    continue;
                }
                out.push_str("%25");
            }
            b'+' => match plus {
                PlusPolicy::Literal => out.push('+'),
                PlusPolicy::Space => out.push_str("%20"),
            },
            c if is_unreserved(c) => out.push(char::from(c)),
            c => push_pct(out, c),
        }
        i += 1;
    }
}

/// The canonical query string: parameters split on `&` (empty pieces dropped), each name
/// and value normalized, sorted by name then value. Parameters named in `exclude`
/// (compared after normalization) are left out.
pub(crate) fn canonical_query(out: &mut impl Sink, query: &str, plus: PlusPolicy, exclude: &str) {
    if query.is_empty() {
        return;
    }
    // Up to 8 parameters are sorted on the stack; more spill into a Vec.
    let mut inline: [(Cow<'_, str>, Cow<'_, str>); 8] = Default::default();
    let mut len = 0;
    let mut spill = Vec::new();
    for piece in split_ascii(query, b'&') {
        if piece.is_empty() {
            continue;
        }
        let (k, v) = split_once_ascii(piece, b'=').unwrap_or((piece, ""));
        let ck = canonical_component_cow(k, plus);
        if !exclude.is_empty() && ck == exclude {
            continue;
        }
        let pair = (ck, canonical_component_cow(v, plus));
        match inline.get_mut(len) {
            Some(slot) => {
                *slot = pair;
                len += 1;
            }
            None => spill.push(pair),
        }
    }
    let pairs: &mut [(Cow<'_, str>, Cow<'_, str>)] = if spill.is_empty() {
        inline.get_mut(..len).unwrap_or_default()
    } else {
        spill.extend(inline.into_iter().take(len));
        &mut spill
    };
    pairs.sort_unstable();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.put_ascii(b'&');
        }
        out.put(k);
        out.put_ascii(b'=');
        out.put(v);
    }
}

/// `s` split at every `sep` (an ASCII byte), like `str::split`, by a byte scan: the
/// pieces are short, where a `str` pattern search costs more than it saves.
pub(crate) fn split_ascii(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let current = rest?;
        match split_once_ascii(current, sep) {
            Some((piece, tail)) => {
                rest = Some(tail);
                Some(piece)
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

/// `s` split at the first `sep` (an ASCII byte), like `str::split_once`.
pub(crate) fn split_once_ascii(s: &str, sep: u8) -> Option<(&str, &str)> {
    let i = find_byte(s.as_bytes(), sep)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// The first `needle` in `hay`, eight bytes at a time: the pieces searched here (header
/// parameters, query pairs) are tens of bytes, too short for a SIMD search to pay for
/// its set-up, too long for a byte loop.
fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    const LOW: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    let pattern = LOW.wrapping_mul(u64::from(needle));
    let mut chunks = hay.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        let x = u64::from_le_bytes(bytes) ^ pattern;
        // High bit set in each byte of `x` that is zero; the lowest one is exact.
        let zero = x.wrapping_sub(LOW) & !x & HIGH;
        if zero != 0 {
            return Some(offset + (zero.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    let rest = chunks.remainder();
    rest.iter().position(|&b| b == needle).map(|i| offset + i)
}

/// Percent-decodes (no `+` handling) into bytes, then UTF-8 (lossy never: `None`).
pub(crate) fn percent_decode(input: &str) -> Option<String> {
    let b = input.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hi = b.get(i + 1).copied().and_then(hex_val)?;
            let lo = b.get(i + 2).copied().and_then(hex_val)?;
            out.push((hi << 4) | lo);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Trims a header value and folds every run of inner whitespace into one space.
pub(crate) fn fold_header_value(out: &mut impl Sink, value: &str) {
    if is_folded(value) {
        out.put(value);
        return;
    }
    let mut first = true;
    for word in value.split_ascii_whitespace() {
        if !first {
            out.put_ascii(b' ');
        }
        out.put(word);
        first = false;
    }
}

/// Whether [`fold_header_value`] would copy `value` unchanged (the common case): no
/// leading, trailing or repeated whitespace, and no whitespace but plain spaces.
fn is_folded(value: &str) -> bool {
    let mut prev_space = true;
    let inner_ok = value.bytes().all(|b| {
        let space = b.is_ascii_whitespace();
        let ok = !space || (b == b' ' && !prev_space);
        prev_space = space;
        ok
    });
    value.is_empty() || (inner_ok && !prev_space)
}

/// RFC 9110 token characters (header names), as a table: this runs on every header
/// name of every request.
static TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        i += 1;
    }
    table
};

pub(crate) fn is_token_byte(b: u8) -> bool {
    TOKEN[usize::from(b)]
}

/// A token byte that is not an upper-case letter (signed header names).
pub(crate) fn is_lower_token_byte(b: u8) -> bool {
    is_token_byte(b) & !b.is_ascii_uppercase()
}

/// RFC 9110 token characters (header names).
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// 64 lower-case hex digits, decoded; `None` for anything else.
pub(crate) fn decode_lower_hex32(s: &str) -> Option<[u8; 32]> {
    // Nibble values, 0x10 for bytes that are not lower-case hex digits.
    static NIBBLE: [u8; 256] = {
        let mut table = [0x10u8; 256];
        let mut i = 0;
        while i < 10 {
            table[b'0' as usize + i] = i as u8;
            i += 1;
        }
        let mut i = 0;
        while i < 6 {
            table[b'a' as usize + i] = 10 + i as u8;
            i += 1;
        }
        table
    };
    let b: &[u8; 64] = s.as_bytes().try_into().ok()?;
    let mut out = [0u8; 32];
    let mut bad = 0u8;
    for (i, o) in out.iter_mut().enumerate() {
        let hi = NIBBLE[usize::from(b[2 * i])];
        let lo = NIBBLE[usize::from(b[2 * i + 1])];
        bad |= hi | lo;
        *o = (hi << 4) | (lo & 0x0f);
    }
    (bad & 0x10 == 0).then_some(out)
}

/// Whether every byte is printable ASCII (0x20 to 0x7e). No early exit, so it
/// vectorizes; inputs are bounded by the caller.
pub(crate) fn is_printable_ascii(s: &str) -> bool {
    s.bytes().fold(true, |ok, b| ok & (0x20..0x7f).contains(&b))
}

pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.put_ascii(HEX_LOWER[usize::from(b >> 4)]);
        s.put_ascii(HEX_LOWER[usize::from(b & 0x0f)]);
    }
    s
}

/// A SHA-256 value in lower-case hex, without an allocation.
#[derive(Clone, Copy)]
pub(crate) struct Hex32([u8; 64]);

impl Hex32 {
    pub(crate) fn new(bytes: &[u8; 32]) -> Self {
        let mut out = [0u8; 64];
        for (i, &b) in bytes.iter().enumerate() {
            out[2 * i] = HEX_LOWER[usize::from(b >> 4)];
            out[2 * i + 1] = HEX_LOWER[usize::from(b & 0x0f)];
        }
        Self(out)
    }

    pub(crate) fn as_str(&self) -> &str {
        // Hex digits are ASCII, so this never fails.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    pub(crate) fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str, plus: PlusPolicy) -> String {
        let mut out = String::new();
        canonical_query(&mut out, s, plus, "");
        out
    }

    #[test]
    fn query_rules() {
        assert_eq!(q("b=2&a=1&a=0", PlusPolicy::Literal), "a=0&a=1&b=2");
        assert_eq!(q("k=%e1%88%b4&x", PlusPolicy::Literal), "k=%E1%88%B4&x=");
        assert_eq!(q("a=%41%2F/", PlusPolicy::Literal), "a=A%2F%2F");
        assert_eq!(q("a=x+y", PlusPolicy::Literal), "a=x+y");
        assert_eq!(q("a=x+y", PlusPolicy::Space), "a=x%20y");
        assert_eq!(q("a=%2B&b=%20", PlusPolicy::Literal), "a=%2B&b=%20");
        assert_eq!(q("a=%zz&&", PlusPolicy::Literal), "a=%25zz");
    }

    #[test]
    fn path_rules() {
        assert_eq!(normalize_path("/a/./b/../c//d/"), "/a/c/d/");
        assert_eq!(normalize_path("/example/.."), "/");
        assert_eq!(normalize_path("/../.."), "/");
        assert_eq!(normalize_path(""), "/");
        let mut out = String::new();
        canonical_path(&mut out, "/a%3Db/@", true, true);
        assert_eq!(out, "/a%253Db/%40");
        out.clear();
        canonical_path(&mut out, "/a%3Db/@", false, false);
        assert_eq!(out, "/a%3Db/@");
    }

    fn fold_slow(value: &str) -> String {
        value.split_ascii_whitespace().collect::<Vec<_>>().join(" ")
    }

    proptest::proptest! {
        // The fast paths copy their input only when the full rules would not change it.
        #[test]
        fn fast_paths_agree_with_the_full_rules(
            s in "[a-zA-Z0-9%+/. ~_\t-]{0,12}(%[0-9a-fA-F]{2}|[.]{1,2}/|//|é)?[a-zA-Z0-9%+/. ~\t-]{0,12}"
        ) {
            for plus in [PlusPolicy::Literal, PlusPolicy::Space] {
                let mut full = String::new();
                canonical_component(&mut full, &s, plus);
                if is_canonical_component(&s, plus) {
                    proptest::prop_assert_eq!(&full, &s);
                }
            }
            if is_normalized_path(&s) {
                proptest::prop_assert_eq!(remove_dot_segments(&s), s.clone());
            }
            let mut folded = String::new();
            fold_header_value(&mut folded, &s);
            proptest::prop_assert_eq!(folded, fold_slow(&s));
        }
    }

    #[test]
    fn token_table_and_hex() {
        assert!(is_token("x-amz-date") && is_token("A!#$%&'*+-.^_`|~9"));
        assert!(!is_token("") && !is_token("a b") && !is_token("a:b") && !is_token("é"));
        let sig = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        assert_eq!(
            decode_lower_hex32(sig).unwrap().to_vec(),
            hex::decode(sig).unwrap()
        );
        assert!(decode_lower_hex32(&sig.to_uppercase()).is_none());
        assert!(decode_lower_hex32(sig.get(..62).unwrap()).is_none());
        assert!(
            is_printable_ascii("a ~") && !is_printable_ascii("a\tb") && !is_printable_ascii("é")
        );
    }

    proptest::proptest! {
        #[test]
        fn find_byte_finds_the_first(hay in proptest::collection::vec(0u8..=255, 0..80), needle: u8) {
            proptest::prop_assert_eq!(find_byte(&hay, needle), hay.iter().position(|&b| b == needle));
        }

        #[test]
        fn find_byte_finds_the_first_among_lookalikes(
            hay in proptest::collection::vec(prop_oneof_bytes(), 0..80)
        ) {
            for needle in [b',', b'&', b'=', 0x80, 0x00, 0xff] {
                proptest::prop_assert_eq!(
                    find_byte(&hay, needle),
                    hay.iter().position(|&b| b == needle)
                );
            }
        }
    }

    /// Bytes next to the borrow boundaries of the word-at-a-time search.
    fn prop_oneof_bytes() -> impl proptest::strategy::Strategy<Value = u8> {
        proptest::sample::select(vec![
            0u8, 1, b',', b'-', b'+', b'&', b'=', 0x7f, 0x80, 0x81, 0xfe, 0xff,
        ])
    }

    #[test]
    fn ascii_splitting_matches_str_splitting() {
        for s in ["", "&", "a", "a&&b&", "&a=1&b=2=3", "é&x"] {
            assert_eq!(
                split_ascii(s, b'&').collect::<Vec<_>>(),
                s.split('&').collect::<Vec<_>>()
            );
            assert_eq!(split_once_ascii(s, b'='), s.split_once('='));
        }
    }

    #[test]
    fn fast_path_examples() {
        assert!(is_canonical_component("abc%2F%20", PlusPolicy::Literal));
        assert!(!is_canonical_component("a%2f", PlusPolicy::Literal));
        assert!(!is_canonical_component("%41", PlusPolicy::Literal));
        assert!(!is_canonical_component("a+b", PlusPolicy::Space));
        assert!(is_normalized_path("/api/orders/"));
        assert!(!is_normalized_path("/a/./b"));
        assert!(!is_normalized_path("/a//b"));
        assert!(is_folded("application/json"));
        assert!(!is_folded(" a"));
        assert!(!is_folded("a\tb"));
        let mut out = String::new();
        uri_encode(&mut out, "/a b/é", true);
        assert_eq!(out, "/a%20b/%C3%A9");
    }

    #[test]
    fn fold() {
        let mut out = String::new();
        fold_header_value(&mut out, "  \"a   b \t c\"  ");
        assert_eq!(out, "\"a b c\"");
    }
}

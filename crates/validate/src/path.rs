use std::path::{Component, Path, PathBuf};

use crate::{Error, ErrorKind};

/// Characters that some layer (a Unicode normaliser, a Windows API, a proxy) may turn into
/// `.`, `/` or `\`.
const LOOKALIKES: [char; 9] = [
    '\u{ff0e}', '\u{2024}', '\u{fe52}', // dots
    '\u{ff0f}', '\u{2215}', '\u{2044}', // slashes
    '\u{ff3c}', '\u{29f5}', '\u{fe68}', // backslashes
];

/// Joins a client-supplied relative path to `base`, refusing every way out of `base`.
///
/// Refused: an empty path; NUL and other control characters; absolute paths (`/etc`,
/// `\x`, `C:x`, `\\server\share`); any `..` component (with `/` and `\` both treated as
/// separators, and Windows' trailing dots and spaces ignored: `.. ` is `..`); percent
/// escapes of dots, separators, `%` itself, NUL or non-ASCII bytes (`%2e%2e%2f`,
/// `%252e`, `%c0%ae`); Unicode look-alikes of dots and slashes; and, on disk, a path whose
/// existing part resolves through a symbolic link outside `base` (a dangling link too).
///
/// Returns the path with `base` and the existing part canonicalised. `base` must exist.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let base = dir.path();
/// assert!(palisade_validate::safe_join(base, "avatars/me.png").is_ok());
/// assert!(palisade_validate::safe_join(base, "../../etc/passwd").is_err());
/// assert!(palisade_validate::safe_join(base, "%2e%2e/secret").is_err());
/// ```
///
/// # Security
/// The check and the later open are two steps: whoever can create symbolic links inside
/// `base` between them can still redirect the open. Where that is possible, open with
/// `openat2(RESOLVE_BENEATH)` or a capability library.
///
/// # Errors
/// [`ErrorKind::InvalidPath`], [`ControlCharacter`](ErrorKind::ControlCharacter),
/// [`AbsolutePath`](ErrorKind::AbsolutePath), [`PathTraversal`](ErrorKind::PathTraversal),
/// [`EncodedTraversal`](ErrorKind::EncodedTraversal), [`SymlinkEscape`](ErrorKind::SymlinkEscape).
pub fn safe_join(base: &Path, client: &str) -> Result<PathBuf, Error> {
    let parts = check_lexically(client)?;
    let canonical_base = base
        .canonicalize()
        .map_err(|_| Error::new(ErrorKind::InvalidPath).with_detail("base directory"))?;
    let mut resolved = canonical_base.clone();
    let mut rest = parts.iter();
    for part in rest.by_ref() {
        let next = resolved.join(part);
        match std::fs::symlink_metadata(&next) {
            Ok(_) => {
                // Follows every link on the way; a dangling one fails here and is refused.
                let real = next
                    .canonicalize()
                    .map_err(|_| Error::new(ErrorKind::SymlinkEscape))?;
                if !real.starts_with(&canonical_base) {
                    return Err(Error::new(ErrorKind::SymlinkEscape));
                }
                resolved = real;
            }
            Err(_) => {
                resolved = next;
                break;
            }
        }
    }
    for part in rest {
        resolved.push(part);
    }
    Ok(resolved)
}

fn check_lexically(client: &str) -> Result<Vec<&str>, Error> {
    if client.is_empty() {
        return Err(Error::new(ErrorKind::InvalidPath));
    }
    if client.chars().any(char::is_control) {
        return Err(Error::new(ErrorKind::ControlCharacter));
    }
    if client.contains(LOOKALIKES) {
        return Err(Error::new(ErrorKind::EncodedTraversal));
    }
    let bytes = client.as_bytes();
    for (i, _) in client.match_indices('%') {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok())
            && (matches!(byte, b'.' | b'/' | b'\\' | b'%' | b':') || !(0x20..0x7f).contains(&byte))
        {
            return Err(Error::new(ErrorKind::EncodedTraversal));
        }
    }
    let first = client.chars().next();
    let drive = matches!(
        (first, client.chars().nth(1)),
        (Some(c), Some(':')) if c.is_ascii_alphabetic()
    );
    if matches!(first, Some('/' | '\\')) || drive || Path::new(client).has_root() {
        return Err(Error::new(ErrorKind::AbsolutePath));
    }
    let mut parts = Vec::new();
    for part in client.split(['/', '\\']) {
        let trimmed = part.trim_end_matches([' ', '.']);
        if part.is_empty() || part == "." {
            continue;
        }
        if trimmed.is_empty() {
            // `..`, `...`, `.. `: all of them mean "parent" to some file system.
            return Err(Error::new(ErrorKind::PathTraversal));
        }
        // Defence in depth: what the platform's own parser sees must be a plain name.
        if !matches!(
            Path::new(part).components().next(),
            Some(Component::Normal(_))
        ) {
            return Err(Error::new(ErrorKind::InvalidPath));
        }
        parts.push(part);
    }
    if parts.is_empty() {
        return Err(Error::new(ErrorKind::InvalidPath));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_rules() {
        let k = |s: &str| check_lexically(s).err().map(|e| e.kind());
        assert_eq!(k("a/b.txt"), None);
        assert_eq!(k("a/./b"), None);
        assert_eq!(k("100%.txt"), None);
        assert_eq!(k("a%20b"), None);
        assert_eq!(k(".hidden"), None);
        assert_eq!(k(""), Some(ErrorKind::InvalidPath));
        assert_eq!(k("./"), Some(ErrorKind::InvalidPath));
        assert_eq!(k("../x"), Some(ErrorKind::PathTraversal));
        assert_eq!(k("a/../../x"), Some(ErrorKind::PathTraversal));
        assert_eq!(k("a\\..\\..\\x"), Some(ErrorKind::PathTraversal));
        assert_eq!(k("a/.. /x"), Some(ErrorKind::PathTraversal));
        assert_eq!(k("a/.../x"), Some(ErrorKind::PathTraversal));
        assert_eq!(k("/etc/passwd"), Some(ErrorKind::AbsolutePath));
        assert_eq!(k("\\windows"), Some(ErrorKind::AbsolutePath));
        assert_eq!(k("\\\\server\\share"), Some(ErrorKind::AbsolutePath));
        assert_eq!(k("C:\\x"), Some(ErrorKind::AbsolutePath));
        assert_eq!(k("c:x"), Some(ErrorKind::AbsolutePath));
        assert_eq!(k("a\u{0}.png"), Some(ErrorKind::ControlCharacter));
        assert_eq!(k("%2e%2e/x"), Some(ErrorKind::EncodedTraversal));
        assert_eq!(k("..%2fx"), Some(ErrorKind::EncodedTraversal));
        assert_eq!(k("%252e%252e"), Some(ErrorKind::EncodedTraversal));
        assert_eq!(k("%c0%ae%c0%ae/x"), Some(ErrorKind::EncodedTraversal));
        assert_eq!(k("a%00.png"), Some(ErrorKind::EncodedTraversal));
        assert_eq!(k("\u{ff0e}\u{ff0e}/x"), Some(ErrorKind::EncodedTraversal));
        assert_eq!(k("a\u{2215}b"), Some(ErrorKind::EncodedTraversal));
    }
}

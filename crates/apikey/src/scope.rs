//! Scopes: validation and the one matching rule.

use crate::error::Error;

const MAX_SCOPE_LEN: usize = 128;
pub(crate) const MAX_SCOPES: usize = 64;

/// Whether a granted scope covers a required one.
///
/// The rule, in full:
/// - equal strings match (`orders:read` covers `orders:read`);
/// - a granted scope ending in `:*` covers every scope that starts with the part before
///   the `*` (`orders:*` covers `orders:read` and `orders:items:write`, but not
///   `orders` itself nor `ordersx:read`);
/// - nothing else: there is no lone `*` super-scope, and a required scope containing `*`
///   is matched only literally.
///
/// ```
/// use palisade_apikey::scope_covers;
/// assert!(scope_covers("orders:*", "orders:read"));
/// assert!(!scope_covers("orders:*", "orders"));
/// assert!(!scope_covers("orders:read", "orders:write"));
/// ```
pub fn scope_covers(granted: &str, required: &str) -> bool {
    if granted == required {
        return true;
    }
    match granted.strip_suffix('*') {
        Some(family) if family.ends_with(':') => {
            required.len() > family.len()
                && required.starts_with(family)
                && !required.ends_with('*')
        }
        _ => false,
    }
}

/// Checks a scope's spelling: 1 to 128 characters of `[A-Za-z0-9_.:-]`, optionally
/// ending in `:*` (a family wildcard), and never a lone `*`.
pub(crate) fn validate_scope(scope: &str) -> Result<(), Error> {
    let body = scope.strip_suffix(":*").unwrap_or(scope);
    let valid = !body.is_empty()
        && scope.len() <= MAX_SCOPE_LEN
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(Error::invalid(
            "scope must be 1 to 128 characters of [A-Za-z0-9_.:-], optionally ending in ':*'",
        ))
    }
}

/// Validates and de-duplicates scopes, keeping their order.
pub(crate) fn normalize_scopes(scopes: Vec<String>) -> Result<Vec<String>, Error> {
    let mut out: Vec<String> = Vec::with_capacity(scopes.len());
    for scope in scopes {
        validate_scope(&scope)?;
        if !out.contains(&scope) {
            out.push(scope);
        }
    }
    if out.len() > MAX_SCOPES {
        return Err(Error::invalid("at most 64 scopes per key"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_rule() {
        assert!(scope_covers("orders:read", "orders:read"));
        assert!(!scope_covers("orders:read", "orders:write"));
        assert!(scope_covers("orders:*", "orders:read"));
        assert!(scope_covers("orders:*", "orders:items:write"));
        assert!(!scope_covers("orders:*", "orders"));
        assert!(!scope_covers("orders:*", "orders:"));
        assert!(!scope_covers("orders:*", "ordersx:read"));
        assert!(!scope_covers("orders:*", "users:read"));
        assert!(!scope_covers("*", "orders:read"));
        assert!(!scope_covers("orders*", "orders:read"));
        assert!(!scope_covers("orders:*", "orders:x:*"));
        assert!(scope_covers("orders:*", "orders:*"));
        assert!(!scope_covers("orders:read", "orders:*"));
    }

    #[test]
    fn validation() {
        for good in ["orders:read", "admin", "a.b-c_d:e", "orders:*", "a:b:*"] {
            assert!(validate_scope(good).is_ok(), "{good}");
        }
        let long = "a".repeat(129);
        for bad in [
            "",
            "*",
            ":*",
            "orders read",
            "orders:*:x",
            "ordérs",
            "a*",
            &long,
        ] {
            assert!(validate_scope(bad).is_err(), "{bad}");
        }
        assert_eq!(
            normalize_scopes(vec!["b".into(), "a".into(), "b".into()]).unwrap(),
            vec!["b".to_owned(), "a".to_owned()]
        );
        let many = (0..65).map(|i| format!("s{i}")).collect();
        assert!(normalize_scopes(many).is_err());
    }
}

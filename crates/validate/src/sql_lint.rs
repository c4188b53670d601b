use std::path::{Path, PathBuf};

/// SQL keywords that mark a format string as a query.
const KEYWORDS: [&str; 8] = [
    "SELECT", "INSERT", "UPDATE", "DELETE", "WHERE", "VALUES", "FROM", "SET",
];

/// Formatting macros whose first literal is checked.
const MACROS: [&str; 4] = ["format!(", "format_args!(", "write!(", "writeln!("];

/// A place where SQL text is built by interpolation, found by [`find_dynamic_sql`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlFinding {
    /// The file, when scanning a directory.
    pub file: Option<PathBuf>,
    /// The 1-based line of the macro call.
    pub line: usize,
    /// The offending line, trimmed.
    pub snippet: String,
}

/// Finds SQL built with `format!` and its relatives in Rust source: a formatting macro whose
/// string contains SQL keywords and interpolates a value (`{id}`, `{}`); constants named
/// in SCREAMING_CASE (`{COLUMNS}`) are fixed text and pass.
///
/// A line may opt out, with a reason, by a `// sql-lint: allow (...)` comment on it or on
/// the line before (for a table prefix taken from configuration, never from a request).
///
/// ```
/// let bad = r#"let q = format!("SELECT * FROM orders WHERE id = '{id}'");"#;
/// let good = r#"sqlx::query("SELECT * FROM orders WHERE id = $1").bind(id)"#;
/// assert_eq!(palisade_validate::find_dynamic_sql(bad).len(), 1);
/// assert!(palisade_validate::find_dynamic_sql(good).is_empty());
/// ```
pub fn find_dynamic_sql(source: &str) -> Vec<SqlFinding> {
    let lines: Vec<&str> = source.lines().collect();
    let mut findings = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let allowed = |l: Option<&&str>| l.is_some_and(|l| l.contains("sql-lint: allow"));
        if allowed(lines.get(index)) || (index > 0 && allowed(lines.get(index - 1))) {
            continue;
        }
        for mac in MACROS {
            for (at, _) in line.match_indices(mac) {
                // The format string may start on this line or the next ones.
                let rest: String = std::iter::once(line.get(at..).unwrap_or_default())
                    .chain(lines.iter().skip(index + 1).take(3).copied())
                    .collect::<Vec<_>>()
                    .join("\n");
                if let Some(literal) = first_literal(&rest)
                    && is_sql(&literal)
                    && interpolates(&literal)
                {
                    findings.push(SqlFinding {
                        file: None,
                        line: index + 1,
                        snippet: line.trim().to_owned(),
                    });
                }
            }
        }
    }
    findings
}

/// [`find_dynamic_sql`] over every `.rs` file under `dir`, recursively (skipping `target`).
///
/// # Errors
/// An I/O error reading the tree.
pub fn find_dynamic_sql_in_dir(dir: &Path) -> std::io::Result<Vec<SqlFinding>> {
    let mut findings = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            for entry in std::fs::read_dir(&path)? {
                stack.push(entry?.path());
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            let source = std::fs::read_to_string(&path)?;
            findings.extend(find_dynamic_sql(&source).into_iter().map(|mut f| {
                f.file = Some(path.clone());
                f
            }));
        }
    }
    Ok(findings)
}

/// The first string literal's content (plain or raw) in `s`.
fn first_literal(s: &str) -> Option<String> {
    let start = s.find('"')?;
    let raw = s
        .get(..start)
        .is_some_and(|before| before.trim_end_matches('#').ends_with('r'));
    let body = s.get(start + 1..)?;
    if raw {
        return body.split('"').next().map(str::to_owned);
    }
    let mut out = String::new();
    let mut escaped = false;
    for c in body.chars() {
        match (escaped, c) {
            (false, '\\') => escaped = true,
            (false, '"') => return Some(out),
            _ => {
                escaped = false;
                out.push(c);
            }
        }
    }
    None
}

fn is_sql(literal: &str) -> bool {
    let upper = literal.to_ascii_uppercase();
    upper
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|w| KEYWORDS.contains(w))
        .count()
        >= 2
}

/// Whether the format string interpolates anything but constants: `{COLUMNS}` (a
/// SCREAMING_CASE name, by convention a `const`) is fixed text; `{id}`, `{}` and `{0}` are not.
fn interpolates(literal: &str) -> bool {
    let text = literal.replace("{{", "").replace("}}", "");
    text.split('{').skip(1).any(|placeholder| {
        let name = placeholder.split(['}', ':']).next().unwrap_or_default();
        let constant = name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        !constant
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_interpolated_sql_only() {
        let src = r#"
            let a = format!("SELECT id FROM orders WHERE owner = '{owner}'");
            let b = format!(
                "DELETE FROM {} WHERE id = {}", table, id
            );
            // sql-lint: allow (table prefix from configuration)
            let c = format!("SELECT * FROM {prefix}_keys WHERE id = $1");
            let d = format!("hello {name}, from the orders team");
            let e = sqlx::query("SELECT * FROM orders WHERE id = $1").bind(id);
            let f = format!("SELECT {{literal}} FROM t WHERE x = $1");
            let g = format!("SELECT {COLUMNS} FROM t WHERE x = $1");
            write!(out, r"UPDATE t SET a = {v} WHERE id = 1")?;
        "#;
        let lines: Vec<usize> = find_dynamic_sql(src).iter().map(|f| f.line).collect();
        assert_eq!(lines, vec![2, 3, 12]);
    }
}

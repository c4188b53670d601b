//! SQL injection is prevented by parameterized queries, not by validation. This file
//! checks both halves: injection strings are ordinary data to the validators, and no
//! query in the workspace is built by string interpolation.
#![cfg(feature = "sql-lint")]

use std::path::Path;

use palisade_validate::{find_dynamic_sql, find_dynamic_sql_in_dir};

#[test]
fn the_lint_finds_interpolated_queries() {
    let bad = [
        r#"let q = format!("SELECT * FROM orders WHERE owner = '{owner}'");"#,
        r#"sqlx::query(&format!("DELETE FROM orders WHERE id = {}", id))"#,
        "let q = format!(\n    \"UPDATE keys SET revoked = 1 WHERE id = '{id}'\"\n);",
        r#"write!(sql, "INSERT INTO t (a) VALUES ('{v}')")?;"#,
    ];
    for src in bad {
        assert_eq!(find_dynamic_sql(src).len(), 1, "{src}");
    }
    let good = [
        r#"sqlx::query("SELECT * FROM orders WHERE owner = $1").bind(owner)"#,
        r#"sqlx::query("INSERT INTO t (a) VALUES (?)").bind(v)"#,
        r#"let msg = format!("order {id} from {owner}");"#,
        "// sql-lint: allow (prefix from configuration, validated at start-up)\nlet q = format!(\"SELECT * FROM {prefix}_keys WHERE id = $1\");",
    ];
    for src in good {
        assert!(find_dynamic_sql(src).is_empty(), "{src}");
    }
}

#[test]
fn workspace_queries_are_parameterized() {
    // Every crate of the workspace, the server's included: a query whose text is built
    // from values would make injection possible whatever the validators say.
    // Production code only (`src/`): tests may build statements from catalog names.
    let own = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut findings = Vec::new();
    for entry in std::fs::read_dir(own.join("..")).unwrap() {
        let dir = entry.unwrap().path();
        // This crate's own sources hold the lint's deliberate bad examples.
        if dir.file_name() == own.file_name() || !dir.join("src").is_dir() {
            continue;
        }
        findings.extend(find_dynamic_sql_in_dir(&dir.join("src")).unwrap());
    }
    let report: Vec<String> = findings
        .iter()
        .map(|f| {
            format!(
                "{}:{}: {}",
                f.file.as_deref().unwrap_or(Path::new("?")).display(),
                f.line,
                f.snippet
            )
        })
        .collect();
    assert!(
        report.is_empty(),
        "SQL built by interpolation:\n{}",
        report.join("\n")
    );
}

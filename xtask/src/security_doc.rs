//! docs/SECURITY.md names, for every OWASP row and checklist item, the tests that prove
//! it (`crates/x/tests/y.rs::test_name`): each named file must exist and define each
//! named function, so the map cannot point at tests that were renamed or removed.

use std::fs;

use crate::util::workspace_root;

/// The `path.rs` or `path.rs::function` spans in backticks.
fn references(text: &str) -> Vec<(String, Option<String>)> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|span| {
            let (path, function) = match span.split_once("::") {
                Some((path, function)) => (path, Some(function)),
                None => (span, None),
            };
            let is_source = (path.starts_with("crates/") || path.starts_with("xtask/"))
                && path.ends_with(".rs")
                && !path.contains(' ');
            is_source.then(|| (path.to_owned(), function.map(str::to_owned)))
        })
        .collect()
}

#[test]
fn every_test_the_security_map_names_exists() {
    let root = workspace_root();
    let text = fs::read_to_string(root.join("docs/SECURITY.md")).unwrap();
    let references = references(&text);
    assert!(
        references.len() > 50,
        "few references found: {}",
        references.len()
    );
    let mut missing = Vec::new();
    for (path, function) in references {
        let Ok(source) = fs::read_to_string(root.join(&path)) else {
            missing.push(path);
            continue;
        };
        // `<name>` stands for every test of a file.
        if let Some(function) = function.filter(|f| !f.starts_with('<')) {
            let defined = ["(", "<"]
                .iter()
                .any(|next| source.contains(&format!("fn {function}{next}")));
            if !defined {
                missing.push(format!("{path}::{function}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/SECURITY.md names missing tests: {missing:#?}"
    );
}

#[test]
fn references_are_read_from_backticks() {
    let refs = references("see `crates/a/tests/b.rs::c` and `crates/a/tests/d.rs`, not `x::y`");
    assert_eq!(
        refs,
        [
            ("crates/a/tests/b.rs".to_owned(), Some("c".to_owned())),
            ("crates/a/tests/d.rs".to_owned(), None)
        ]
    );
}

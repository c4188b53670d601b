//! `cargo xtask check-deps`: the rule that makes the core crates cherry-pickable.
//!
//! None of the eight core crates may depend on a web framework or HTTP stack, directly,
//! through a dependency, or through any of its features (all features are resolved, so a
//! default or optional feature cannot smuggle one in). Dev-dependencies are exempt: tests
//! may drive a real HTTP server. The dependency graph comes from `cargo metadata`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;

use serde_json::Value;

use crate::util::{cargo, output};

/// The crates that must stay free of any web framework.
pub(crate) const CORE_CRATES: [&str; 8] = [
    "palisade-apikey",
    "palisade-jwt",
    "palisade-signing",
    "palisade-ratelimit",
    "palisade-validate",
    "palisade-abuse",
    "palisade-headers",
    "palisade-mtls",
];

/// Web frameworks, HTTP servers and clients, and their middleware stacks.
const FORBIDDEN: [&str; 16] = [
    "axum",
    "axum-core",
    "axum-extra",
    "axum-server",
    "hyper",
    "hyper-util",
    "tower",
    "tower-http",
    "actix-web",
    "actix-http",
    "warp",
    "rocket",
    "poem",
    "salvo",
    "tide",
    "reqwest",
];

/// `check-deps [--workspace DIR]`: checks this workspace, or the one rooted at DIR.
pub(crate) fn run_cli(args: &[String]) -> Result<(), String> {
    match args {
        [] => run(&crate::util::workspace_root()),
        [flag, dir] if flag == "--workspace" => run(Path::new(dir)),
        _ => Err("usage: cargo xtask check-deps [--workspace DIR]".into()),
    }
}

/// Checks the workspace whose root manifest lives in `root`.
pub(crate) fn run(root: &Path) -> Result<(), String> {
    let metadata = output(
        cargo()
            .current_dir(root)
            .args(["metadata", "--format-version", "1", "--all-features"])
            .arg("--manifest-path")
            .arg(root.join("Cargo.toml")),
    )?;
    let metadata: Value = serde_json::from_str(&metadata)
        .map_err(|error| format!("check-deps: cargo metadata printed invalid JSON: {error}"))?;
    let violations = violations(&metadata)?;
    if violations.is_empty() {
        eprintln!(
            "check-deps: the {} core crates are free of web frameworks",
            CORE_CRATES.len()
        );
        return Ok(());
    }
    let mut message = String::from("check-deps: core crates must not depend on a web framework:");
    for path in &violations {
        message.push_str("\n  ");
        message.push_str(&path.join(" -> "));
    }
    message.push_str(
        "\nMove HTTP code into palisade-axum or palisade-server, or make it a dev-dependency.",
    );
    Err(message)
}

/// Every path from a core crate to a forbidden crate (the shortest one per pair).
pub(crate) fn violations(metadata: &Value) -> Result<Vec<Vec<String>>, String> {
    let names: HashMap<&str, &str> = metadata["packages"]
        .as_array()
        .ok_or("check-deps: metadata has no packages")?
        .iter()
        .filter_map(|package| Some((package["id"].as_str()?, package["name"].as_str()?)))
        .collect();
    let mut edges: HashMap<&str, Vec<&str>> = HashMap::new();
    for node in metadata["resolve"]["nodes"]
        .as_array()
        .ok_or("check-deps: metadata has no resolve graph")?
    {
        let Some(id) = node["id"].as_str() else {
            continue;
        };
        let targets = node["deps"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|dep| is_shipped(dep))
            .filter_map(|dep| dep["pkg"].as_str());
        edges.entry(id).or_default().extend(targets);
    }

    let members: Vec<&str> = metadata["workspace_members"]
        .as_array()
        .ok_or("check-deps: metadata has no workspace members")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut found = Vec::new();
    for core in CORE_CRATES {
        let Some(start) = members
            .iter()
            .copied()
            .find(|id| names.get(id) == Some(&core))
        else {
            return Err(format!(
                "check-deps: core crate {core} is not in the workspace"
            ));
        };
        found.extend(forbidden_paths(start, &edges, &names));
    }
    Ok(found)
}

/// A dependency that ends up in the crate users build: normal or build, not dev.
fn is_shipped(dep: &Value) -> bool {
    dep["dep_kinds"].as_array().is_some_and(|kinds| {
        kinds
            .iter()
            .any(|kind| kind["kind"].as_str() != Some("dev"))
    })
}

/// Breadth-first search from `start`, so each reported path is a shortest one.
fn forbidden_paths(
    start: &str,
    edges: &HashMap<&str, Vec<&str>>,
    names: &HashMap<&str, &str>,
) -> Vec<Vec<String>> {
    let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    let mut hits = Vec::new();
    while let Some(id) = queue.pop_front() {
        for &next in edges.get(id).map(Vec::as_slice).unwrap_or_default() {
            if next == start || parent.contains_key(next) {
                continue;
            }
            parent.insert(next, id);
            let name = names.get(next).copied().unwrap_or(next);
            if FORBIDDEN.contains(&name) {
                hits.push(next);
            } else {
                queue.push_back(next);
            }
        }
    }
    hits.into_iter()
        .map(|hit| {
            let mut path = vec![hit];
            while let Some(&up) = path.last().and_then(|id| parent.get(id)) {
                path.push(up);
            }
            path.push(start);
            path.dedup();
            path.iter()
                .rev()
                .map(|id| names.get(id).copied().unwrap_or(id).to_owned())
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn metadata(extra_edges: &[(&str, &str, &str)]) -> Value {
        let mut packages = vec![];
        let mut nodes = vec![];
        for core in CORE_CRATES {
            packages.push(json!({"id": core, "name": core}));
        }
        for name in ["sha2", "shim", "axum", "tokio"] {
            packages.push(json!({"id": name, "name": name}));
        }
        let mut deps: HashMap<&str, Vec<Value>> = HashMap::new();
        for (from, to, kind) in extra_edges {
            let kind = if *kind == "normal" {
                Value::Null
            } else {
                json!(kind)
            };
            deps.entry(from).or_default().push(
                json!({"name": to, "pkg": to, "dep_kinds": [{"kind": kind, "target": null}]}),
            );
        }
        for package in &packages {
            let id = package["id"].as_str().unwrap();
            nodes.push(json!({"id": id, "deps": deps.remove(id).unwrap_or_default()}));
        }
        json!({"packages": packages, "workspace_members": CORE_CRATES, "resolve": {"nodes": nodes}})
    }

    #[test]
    fn clean_graph_passes() {
        let graph = metadata(&[
            ("palisade-apikey", "sha2", "normal"),
            ("sha2", "tokio", "normal"),
        ]);
        assert!(violations(&graph).unwrap().is_empty());
    }

    #[test]
    fn direct_dependency_is_named() {
        let graph = metadata(&[("palisade-jwt", "axum", "normal")]);
        assert_eq!(
            violations(&graph).unwrap(),
            vec![vec!["palisade-jwt".to_owned(), "axum".to_owned()]]
        );
    }

    #[test]
    fn transitive_path_is_reported_in_full() {
        let graph = metadata(&[
            ("palisade-apikey", "shim", "normal"),
            ("shim", "axum", "build"),
        ]);
        assert_eq!(
            violations(&graph).unwrap(),
            vec![vec![
                "palisade-apikey".to_owned(),
                "shim".to_owned(),
                "axum".to_owned()
            ]]
        );
    }

    #[test]
    fn dev_dependencies_are_allowed() {
        let graph = metadata(&[("palisade-mtls", "axum", "dev")]);
        assert!(violations(&graph).unwrap().is_empty());
    }
}

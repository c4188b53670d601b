//! `cargo xtask release VERSION [--dry-run]`: one version for every crate.
//!
//! 1. bumps `[workspace.package] version` and the version of every `palisade*` entry in
//!    `[workspace.dependencies]`, so all crates move in lockstep;
//! 2. moves CHANGELOG.md's `## [Unreleased]` notes under `## [VERSION] - DATE`;
//! 3. packages every publishable crate, in dependency order, with `cargo package`;
//! 4. commits and tags `vVERSION`. Publishing (`cargo publish --workspace`) stays a
//!    deliberate human step.
//!
//! With `--dry-run` nothing in the tree changes: it prints what it would write and packages
//! the crates as they are now, which proves they would publish.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::util::{cargo, output, run as run_command, workspace_root};

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let dry_run = args.iter().any(|arg| arg == "--dry-run");
    let positional: Vec<&String> = args.iter().filter(|arg| *arg != "--dry-run").collect();
    let [version] = positional.as_slice() else {
        return Err("usage: cargo xtask release VERSION [--dry-run]".into());
    };
    if !is_semver(version) {
        return Err(format!(
            "release: `{version}` is not a version like 1.2.3 or 1.2.3-rc.1"
        ));
    }
    let root = workspace_root();
    let manifest_path = root.join("Cargo.toml");
    let changelog_path = root.join("CHANGELOG.md");
    let manifest = fs::read_to_string(&manifest_path)
        .map_err(|error| format!("release: reading Cargo.toml: {error}"))?;
    let changelog = fs::read_to_string(&changelog_path)
        .map_err(|error| format!("release: reading CHANGELOG.md: {error}"))?;

    let (new_manifest, old_version) = bump_versions(&manifest, version)?;
    let new_changelog = release_changelog(&changelog, version, &today())?;
    let order = publish_order()?;

    eprintln!("release {old_version} -> {version}");
    eprintln!(
        "  Cargo.toml: workspace version and {} internal dependency versions",
        count_internal(&manifest)
    );
    eprintln!(
        "  CHANGELOG.md: Unreleased notes move under ## [{version}] - {}",
        today()
    );
    eprintln!("  packages, in dependency order: {}", order.join(", "));
    eprintln!("  then: git commit -am \"Release v{version}\" && git tag -a v{version}");

    let mut package = cargo();
    package.args(["package", "--no-verify"]);
    for name in &order {
        package.args(["-p", name]);
    }

    if dry_run {
        package.arg("--allow-dirty");
        run_command(&mut package)?;
        eprintln!(
            "dry run: packaged {} crates; nothing in the tree was changed",
            order.len()
        );
        return Ok(());
    }

    let status = output(cargo().args(["--version"]).current_dir(&root)).and_then(|_| {
        output(
            std::process::Command::new("git")
                .current_dir(&root)
                .args(["status", "--porcelain"]),
        )
    })?;
    if !status.trim().is_empty() {
        return Err(
            "release: the work tree has uncommitted changes; commit or stash them first".into(),
        );
    }
    fs::write(&manifest_path, new_manifest)
        .map_err(|error| format!("release: writing Cargo.toml: {error}"))?;
    fs::write(&changelog_path, new_changelog)
        .map_err(|error| format!("release: writing CHANGELOG.md: {error}"))?;
    run_command(cargo().args(["update", "--workspace"]))?;
    run_command(&mut package)?;
    let tag = format!("v{version}");
    run_command(std::process::Command::new("git").current_dir(&root).args([
        "commit",
        "-am",
        &format!("Release {tag}"),
    ]))?;
    run_command(std::process::Command::new("git").current_dir(&root).args([
        "tag",
        "-a",
        &tag,
        "-m",
        &format!("Palisade {tag}"),
    ]))?;
    eprintln!("released {tag}; publish with `cargo publish --workspace` and push the tag");
    Ok(())
}

fn is_semver(version: &str) -> bool {
    let (core, pre) = version
        .split_once('-')
        .map_or((version, None), |(c, p)| (c, Some(p)));
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|part| {
            !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_digit())
                && (part.len() == 1 || !part.starts_with('0'))
        })
        && pre.is_none_or(|pre| {
            !pre.is_empty()
                && pre.split('.').all(|id| {
                    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                })
        })
}

fn count_internal(manifest: &str) -> usize {
    manifest
        .lines()
        .filter(|line| line.starts_with("palisade") && line.contains("version = \""))
        .count()
}

/// Rewrites the workspace version and every internal dependency's version.
/// Returns the new manifest and the old version.
pub(crate) fn bump_versions(manifest: &str, version: &str) -> Result<(String, String), String> {
    let mut section = String::new();
    let mut old_version = None;
    let mut lines = Vec::new();
    for line in manifest.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            section = trimmed.to_owned();
        }
        let rewritten = if section == "[workspace.package]" && trimmed.starts_with("version") {
            let old = quoted_after(line, "version")
                .ok_or("release: cannot read [workspace.package] version")?;
            old_version = Some(old.to_owned());
            line.replacen(&format!("\"{old}\""), &format!("\"{version}\""), 1)
        } else if section == "[workspace.dependencies]" && trimmed.starts_with("palisade") {
            match quoted_after(line, "version = ") {
                Some(old) => line.replacen(
                    &format!("version = \"{old}\""),
                    &format!("version = \"{version}\""),
                    1,
                ),
                None => line.to_owned(),
            }
        } else {
            line.to_owned()
        };
        lines.push(rewritten);
    }
    let old_version =
        old_version.ok_or("release: Cargo.toml has no [workspace.package] version")?;
    let mut text = lines.join("\n");
    if manifest.ends_with('\n') {
        text.push('\n');
    }
    Ok((text, old_version))
}

fn quoted_after<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = line.split_once(key)?.1;
    let rest = rest.split_once('"')?.1;
    Some(rest.split_once('"')?.0)
}

/// Moves the Unreleased notes under a heading for `version`, leaving an empty
/// Unreleased section on top.
pub(crate) fn release_changelog(
    changelog: &str,
    version: &str,
    date: &str,
) -> Result<String, String> {
    const UNRELEASED: &str = "## [Unreleased]";
    if changelog.contains(&format!("## [{version}]")) {
        return Err(format!(
            "release: CHANGELOG.md already has a section for {version}"
        ));
    }
    let (before, after) = changelog
        .split_once(UNRELEASED)
        .ok_or("release: CHANGELOG.md has no `## [Unreleased]` section")?;
    Ok(format!(
        "{before}{UNRELEASED}\n\n## [{version}] - {date}{after}"
    ))
}

/// Publishable workspace crates, dependencies before dependents.
fn publish_order() -> Result<Vec<String>, String> {
    let metadata = output(cargo().args(["metadata", "--format-version", "1", "--no-deps"]))?;
    let metadata: Value = serde_json::from_str(&metadata)
        .map_err(|error| format!("release: bad cargo metadata: {error}"))?;
    let packages = metadata["packages"]
        .as_array()
        .ok_or("release: metadata has no packages")?;
    let publishable: BTreeSet<&str> = packages
        .iter()
        .filter(|package| {
            package["publish"]
                .as_array()
                .is_none_or(|registries| !registries.is_empty())
        })
        .filter_map(|package| package["name"].as_str())
        .collect();
    let mut needs: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for package in packages {
        let Some(name) = package["name"]
            .as_str()
            .filter(|name| publishable.contains(name))
        else {
            continue;
        };
        let deps = package["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|dep| dep["kind"].as_str() != Some("dev"))
            .filter_map(|dep| dep["name"].as_str())
            .filter(|dep| publishable.contains(dep))
            .collect();
        needs.insert(name, deps);
    }
    topological(&needs)
}

fn topological(needs: &BTreeMap<&str, BTreeSet<&str>>) -> Result<Vec<String>, String> {
    let mut done: Vec<String> = Vec::new();
    while done.len() < needs.len() {
        let ready: Vec<&str> = needs
            .iter()
            .filter(|(name, deps)| {
                !done.iter().any(|d| d == *name)
                    && deps.iter().all(|dep| done.iter().any(|d| d == dep))
            })
            .map(|(name, _)| *name)
            .collect();
        if ready.is_empty() {
            return Err("release: the workspace's dependencies form a cycle".into());
        }
        done.extend(ready.into_iter().map(str::to_owned));
    }
    Ok(done)
}

/// Today's UTC date as YYYY-MM-DD (days-to-civil, from Howard Hinnant's algorithms).
pub(crate) fn today() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = i64::try_from(seconds / 86_400).unwrap_or(0) + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "[workspace.package]\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[workspace.dependencies]\npalisade-jwt = { path = \"crates/jwt\", version = \"0.1.0\" }\npalisade-testkit = { path = \"crates/testkit\" }\nserde = { version = \"0.1.0\" }\n";

    #[test]
    fn bumps_workspace_and_internal_versions_only() {
        let (text, old) = bump_versions(MANIFEST, "0.2.0").unwrap();
        assert_eq!(old, "0.1.0");
        assert!(text.contains("[workspace.package]\nversion = \"0.2.0\""));
        assert!(text.contains("palisade-jwt = { path = \"crates/jwt\", version = \"0.2.0\" }"));
        assert!(text.contains("palisade-testkit = { path = \"crates/testkit\" }"));
        assert!(
            text.contains("serde = { version = \"0.1.0\" }"),
            "third-party versions stay"
        );
    }

    #[test]
    fn changelog_moves_unreleased_notes() {
        let before = "# Changelog\n\n## [Unreleased]\n\n### Added\n- keys\n";
        let after = release_changelog(before, "0.1.0", "2026-11-27").unwrap();
        assert_eq!(
            after,
            "# Changelog\n\n## [Unreleased]\n\n## [0.1.0] - 2026-11-27\n\n### Added\n- keys\n"
        );
        assert!(
            release_changelog(&after, "0.1.0", "2026-11-28").is_err(),
            "a version is released once"
        );
        assert!(release_changelog("# Changelog\n", "0.1.0", "2026-11-27").is_err());
    }

    #[test]
    fn versions_are_checked() {
        for good in ["0.1.0", "1.20.3", "1.0.0-rc.1"] {
            assert!(is_semver(good), "{good}");
        }
        for bad in ["1.0", "01.0.0", "1.0.0-", "v1.0.0", "1.0.0-r c", ""] {
            assert!(!is_semver(bad), "{bad}");
        }
    }

    #[test]
    fn order_puts_dependencies_first() {
        let mut needs = BTreeMap::new();
        needs.insert("palisade", BTreeSet::from(["palisade-jwt"]));
        needs.insert("palisade-jwt", BTreeSet::new());
        needs.insert(
            "palisade-axum",
            BTreeSet::from(["palisade", "palisade-jwt"]),
        );
        assert_eq!(
            topological(&needs).unwrap(),
            ["palisade-jwt", "palisade", "palisade-axum"]
        );
        needs.insert("palisade-jwt", BTreeSet::from(["palisade-axum"]));
        assert!(topological(&needs).is_err());
    }

    #[test]
    fn today_is_a_date() {
        let date = today();
        assert_eq!(date.len(), 10);
        assert!(date.starts_with("20"));
    }
}

//! `safe_join` on a real directory tree with symbolic links.

use std::os::unix::fs::symlink;

use palisade_validate::{ErrorKind, safe_join};

#[test]
fn joins_inside_the_base() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("avatars")).unwrap();
    let base = dir.path().canonicalize().unwrap();
    assert_eq!(
        safe_join(dir.path(), "avatars/me.png").unwrap(),
        base.join("avatars/me.png")
    );
    assert_eq!(
        safe_join(dir.path(), "new/dir/x.txt").unwrap(),
        base.join("new/dir/x.txt")
    );
    assert_eq!(
        safe_join(dir.path(), "./avatars//me.png").unwrap(),
        base.join("avatars/me.png")
    );
}

#[test]
fn symlinks_that_leave_the_base_are_refused() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"s").unwrap();
    let dir = tempfile::tempdir().unwrap();
    symlink(outside.path(), dir.path().join("escape")).unwrap();
    symlink(outside.path().join("secret"), dir.path().join("file-link")).unwrap();
    symlink("/nonexistent/target", dir.path().join("dangling")).unwrap();
    for path in ["escape/secret", "escape/new-file", "file-link", "dangling"] {
        assert_eq!(
            safe_join(dir.path(), path).unwrap_err().kind(),
            ErrorKind::SymlinkEscape,
            "{path}"
        );
    }
}

#[test]
fn symlinks_that_stay_inside_are_followed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("real")).unwrap();
    symlink(dir.path().join("real"), dir.path().join("alias")).unwrap();
    let base = dir.path().canonicalize().unwrap();
    assert_eq!(
        safe_join(dir.path(), "alias/x").unwrap(),
        base.join("real/x")
    );
}

#[test]
fn the_base_itself_may_be_a_link() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    symlink(dir.path().join("data"), dir.path().join("current")).unwrap();
    assert!(safe_join(&dir.path().join("current"), "a.txt").is_ok());
    assert_eq!(
        safe_join(&dir.path().join("missing"), "a.txt")
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidPath
    );
}

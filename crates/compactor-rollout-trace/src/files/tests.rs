//! Tests of private file creation: modes, and links refused at the final component.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;

use super::*;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn files_are_0600_and_directories_0700() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b");
    create_private_dir_all(&nested).unwrap();
    assert_eq!(mode(&dir.path().join("a")), 0o700);
    assert_eq!(mode(&nested), 0o700);
    let file = nested.join("f");
    private_file_options().write(true).create_new(true).open(&file).unwrap();
    assert_eq!(mode(&file), 0o600);
    // Existing directories are fine.
    create_private_dir_all(&nested).unwrap();
}

#[test]
fn a_link_at_the_final_component_is_refused_and_its_target_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target.txt");
    std::fs::write(&target, "keep me").unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    for (name, options) in [
        ("append", {
            let mut o = private_file_options();
            o.append(true).create(true);
            o
        }),
        ("truncate", {
            let mut o = private_file_options();
            o.write(true).create(true).truncate(true);
            o
        }),
        ("create_new", {
            let mut o = private_file_options();
            o.write(true).create_new(true);
            o
        }),
    ] {
        let err = options.open(&link).map(|mut f| f.write_all(b"x")).unwrap_err();
        let err = explain_open_error(&link, err);
        assert!(err.to_string().contains("is a symbolic link"), "{name}: {err}");
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
    // A dangling link too.
    let dangling = dir.path().join("dangling");
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
    let err = private_file_options().append(true).create(true).open(&dangling).unwrap_err();
    assert!(explain_open_error(&dangling, err).to_string().contains("is a symbolic link"));
    assert!(!dir.path().join("nowhere").exists());
    // A directory link.
    let dir_link = dir.path().join("dir-link");
    std::os::unix::fs::symlink(dir.path(), &dir_link).unwrap();
    let err = create_private_dir_all(&dir_link).unwrap_err();
    assert!(err.to_string().contains("is a symbolic link"), "{err}");
}

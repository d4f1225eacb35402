//! The kit's layering rule, checked on its sources: nothing below `server` reaches up into it.
//! `server` builds on `client`, `db`, `http`, `auth` and `rate`; if one of those used `server`,
//! a crate taking only that feature (the gateway takes `auth` and `rate`) would need the whole
//! server stack.

use std::path::{Path, PathBuf};

/// The `.rs` files under `path` (itself, if it is one).
fn sources(path: &Path, found: &mut Vec<PathBuf>) {
    if path.is_file() {
        found.push(path.to_owned());
        return;
    }
    for entry in std::fs::read_dir(path).expect("a source folder").flatten() {
        sources(&entry.path(), found);
    }
}

#[test]
fn no_module_below_the_server_uses_it() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for below in [
        "auth",
        "rate",
        "refuse.rs",
        "client",
        "http",
        "db",
        "conn",
        "observe",
        "tls",
    ] {
        sources(&src.join(below), &mut files);
    }
    assert!(files.len() > 30, "{} files", files.len());
    let upward: Vec<String> = files
        .iter()
        .flat_map(|file| {
            let text = std::fs::read_to_string(file).expect("a source file");
            text.lines()
                .enumerate()
                .filter(|(_, line)| {
                    !line.trim_start().starts_with("//")
                        && (line.contains("crate::server::") || line.contains("crate::server;"))
                })
                .map(|(number, line)| format!("{}:{}: {}", file.display(), number + 1, line.trim()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(upward.is_empty(), "{}", upward.join("\n"));
}

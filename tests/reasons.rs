//! Every error reason the servers send is one of `orderly::error::Reason`: no crate's source spells a
//! reason as a string literal of its own, so a caller matching on `Reason` sees every one.

use std::path::Path;

use orderly::error::Reason;

/// The Rust files under `dir`, recursively.
fn sources(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn no_server_source_spells_a_reason_of_its_own() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates");
    let mut files = Vec::new();
    for krate in std::fs::read_dir(&crates).expect("crates/") {
        let src = krate.expect("entry").path().join("src");
        if src.is_dir() {
            sources(&src, &mut files);
        }
    }
    assert!(files.len() > 50, "found the sources: {}", files.len());
    let mut spelled = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable source");
        for reason in Reason::ALL {
            if text.contains(&format!("\"{}\"", reason.as_str())) {
                spelled.push(format!("{}: {reason}", file.display()));
            }
        }
    }
    assert!(
        spelled.is_empty(),
        "use orderly::error::Reason instead of: {spelled:#?}"
    );
}

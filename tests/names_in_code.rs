//! Code names services and methods through the generated `*_service_methods` constants, never by
//! typing them: a misspelt `"Refund"` in a list of calls that are never shed would compile and
//! silently match nothing, where a misspelt constant does not compile. This test reads every
//! production source file of the workspace (generated code lives in the build directory, and each
//! file's `#[cfg(test)]` module onwards is a test) and fails on a string literal that is the full
//! or short name of a service the protos declare, or the name of one of their methods.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use prost::Message as _;

/// Every name a literal may not be: services (full and short) and methods.
fn proto_names() -> BTreeSet<String> {
    let set = prost_types::FileDescriptorSet::decode(orderly::FILE_DESCRIPTOR_SET)
        .expect("the descriptor set decodes");
    let mut names = BTreeSet::new();
    for file in &set.file {
        for service in &file.service {
            names.insert(format!("{}.{}", file.package(), service.name()));
            names.insert(service.name().to_owned());
            names.extend(service.method.iter().map(|m| m.name().to_owned()));
        }
    }
    names
}

/// The `.rs` files under `dir`, recursively.
fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The string literals of one line of code (comments skipped).
fn literals(line: &str) -> Vec<&str> {
    let code = line.trim_start();
    if code.starts_with("//") {
        return Vec::new();
    }
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(start) = rest.find('"') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('"') else { break };
        found.push(&after[..end]);
        rest = &after[end + 1..];
    }
    found
}

#[test]
fn no_service_or_method_name_is_typed_as_a_string_outside_generated_code_and_tests() {
    let names = proto_names();
    assert!(names.contains("Refund"), "the protos name Refund");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    for krate in std::fs::read_dir(root.join("crates"))
        .expect("crates/")
        .flatten()
    {
        sources(&krate.path().join("src"), &mut files);
    }
    assert!(files.len() > 50, "{} source files", files.len());
    let mut typed = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("a source file");
        let production = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (number, line) in production.lines().enumerate() {
            for literal in literals(line) {
                if names.contains(literal) {
                    typed.push(format!(
                        "{}:{}: \"{literal}\"",
                        file.strip_prefix(&root).unwrap_or(file).display(),
                        number + 1
                    ));
                }
            }
        }
    }
    assert!(
        typed.is_empty(),
        "use the generated constants (orderly::<package>::<service>_methods) instead of:\n{}",
        typed.join("\n")
    );
}

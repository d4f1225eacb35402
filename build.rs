//! Compiles every `.proto` under `proto/` into Rust messages, servers and typed clients, and writes the
//! encoded file descriptor set that server reflection serves.
//!
//! The compiler is protox, written in Rust, so a build needs no system `protoc`.

use std::path::{Path, PathBuf};

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new("proto");
    let mut files = Vec::new();
    collect_protos(root, &mut files)?;
    files.sort();

    let fds = protox::compile(&files, [root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("orderly_descriptor.bin"), fds.encode_to_vec())?;
    write_method_names(&fds, &out_dir)?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .build_transport(true)
        // A fake server implements only the methods a test needs; the rest answer UNIMPLEMENTED,
        // and a streaming method returns `BoxStream`, not a stream type of the implementer's.
        .generate_default_stubs(true)
        .emit_rerun_if_changed(false)
        .compile_fds(fds)?;

    println!("cargo:rerun-if-changed=proto");
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    Ok(())
}

/// Writes, for each package with services, `<package>.methods.rs`: a module per service
/// (`user_service_methods`) with a constant per method holding its name (`GET_USER = "GetUser"`),
/// so that code naming a method (breakers, metrics, fault filters) takes it from the proto instead
/// of retyping it.
fn write_method_names(fds: &prost_types::FileDescriptorSet, out_dir: &Path) -> std::io::Result<()> {
    let mut by_package = std::collections::BTreeMap::<String, String>::new();
    for file in &fds.file {
        let package = file.package();
        for service in &file.service {
            let code = by_package.entry(package.to_owned()).or_default();
            let name = service.name();
            code.push_str(&format!(
                "/// The names of {name}'s methods, as in `/{package}.{name}/Method`.\n\
                 pub mod {}_methods {{\n\
                 \x20   /// The service's full name.\n\
                 \x20   pub const SERVICE: &str = \"{package}.{name}\";\n",
                snake(name)
            ));
            let mut all = Vec::new();
            for method in &service.method {
                let method = method.name();
                let constant = snake(method).to_uppercase();
                code.push_str(&format!(
                    "    /// `{method}`.\n    pub const {constant}: &str = \"{method}\";\n"
                ));
                all.push(constant);
            }
            code.push_str(&format!(
                "    /// Every method, in the order the proto declares them.\n    pub const ALL: &[&str] = &[{}];\n}}\n",
                all.join(", ")
            ));
        }
    }
    for (package, code) in by_package {
        std::fs::write(out_dir.join(format!("{package}.methods.rs")), code)?;
    }
    Ok(())
}

/// `BatchGetUsers` as `batch_get_users`.
fn snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Gathers every `.proto` file below `dir`.
fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

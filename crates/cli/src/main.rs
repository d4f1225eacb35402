//! The `orderly` binary: runs Orderly's services, alone or all together.

fn main() {
    eprintln!("orderly: no service is built yet; see the README for what is available");
    std::process::exit(2);
}

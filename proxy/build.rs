//! Records the commit the binary is built from, for `strait --version`.

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        // Built outside a git checkout (a source tarball, a vendored copy).
        .unwrap_or_else(|| "unknown commit".into());
    println!("cargo:rustc-env=STRAIT_COMMIT={commit}");
    // A new commit or a checkout moves HEAD (or the branch it points to).
    for path in ["../.git/HEAD", "../.git/refs/heads", "../.git/packed-refs"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}

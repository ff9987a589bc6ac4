//! `docs/adding-a-protocol.md` followed as written, in a copy of the repository: scaffold
//! a protocol with `scripts/new-protocol`, run its tests, build its binaries, and get a
//! request answered by its backend through its own Strait binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::*;

/// Runs `cmd` in `dir`, panicking with its output if it fails; returns its stdout.
fn run(dir: &Path, cmd: &mut Command) -> String {
    let out = cmd
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A copy of the repository's tracked files (what a clone has), with its git history.
fn copy_of_repo(into: &Path) {
    let root = repo_root();
    let files = run(&root, Command::new("git").args(["ls-files", "-z"]));
    for file in files.split('\0').filter(|f| !f.is_empty()) {
        let to = into.join(file);
        std::fs::create_dir_all(to.parent().expect("a parent")).expect("mkdir");
        // Tracked files deleted in the working tree are skipped.
        let _ = std::fs::copy(root.join(file), &to);
    }
}

fn cargo(args: &[&str], target: &Path) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(args)
        // Its own target directory: the copy's crates must not overwrite the binaries
        // other tests are running.
        .env("CARGO_TARGET_DIR", target)
        .env("CARGO_TERM_COLOR", "never");
    cmd
}

#[test]
fn a_scaffolded_protocol_builds_tests_and_proxies_through_its_own_binary() {
    let dir = TempDir::new("scaffold");
    let repo: PathBuf = dir.path().join("strait");
    copy_of_repo(&repo);
    let target = dir.path().join("target");

    // The doc's first command, then its tests as scaffolded.
    let said = run(
        &repo,
        Command::new("bash").args(["scripts/new-protocol", "acme"]),
    );
    assert!(said.contains("cargo test -p strait-codec-acme"), "{said}");
    let members = std::fs::read_to_string(repo.join("Cargo.toml")).expect("Cargo.toml");
    assert!(
        members.contains("\"codecs/acme\","),
        "not a workspace member:\n{members}"
    );
    run(
        &repo,
        &mut cargo(&["test", "--offline", "-p", "strait-codec-acme"], &target),
    );
    run(
        &repo,
        &mut cargo(
            &["build", "--offline", "-p", "strait-codec-acme", "--bins"],
            &target,
        ),
    );
    // The name it was given, everywhere.
    let lib = std::fs::read_to_string(repo.join("codecs/acme/src/lib.rs")).expect("lib.rs");
    assert!(
        lib.contains("pub struct AcmeFrame") && !lib.contains("lenproto"),
        "{lib}"
    );

    // The doc's run: backend, proxy on the scaffolded config, one call.
    let bin = target.join("debug");
    let mut echo = Proc::spawn(
        "acme-echo",
        Command::new(bin.join("acme-echo")).args(["--listen", "127.0.0.1:0", "--name", "echo"]),
    );
    let backend = wait_until("acme-echo's address", Duration::from_secs(10), || {
        echo.stdout
            .snapshot()
            .iter()
            .find_map(|l| l.strip_prefix("listening on ").map(str::to_string))
    });
    let (listen, admin) = (free_port(), free_port());
    let config = std::fs::read_to_string(repo.join("codecs/acme/strait.yaml"))
        .expect("the scaffolded config")
        .replace("127.0.0.1:12300", &format!("127.0.0.1:{listen}"))
        .replace("127.0.0.1:12301", &backend)
        .replace("127.0.0.1:9902", &format!("127.0.0.1:{admin}"));
    let config_path = dir.write("acme.yaml", &config);
    let mut proxy = Proc::spawn(
        "strait-acme",
        Command::new(bin.join("strait-acme"))
            .arg("-c")
            .arg(&config_path),
    );
    let listen: std::net::SocketAddr = ([127, 0, 0, 1], listen).into();
    wait_until("strait-acme to listen", Duration::from_secs(20), || {
        assert!(
            proxy.try_status().is_none(),
            "strait-acme exited: {}",
            proxy.describe()
        );
        accepts_connections(listen).then_some(())
    });
    let answer = run(
        &repo,
        Command::new(bin.join("acme-call")).args([&listen.to_string(), "alpha", "hello"]),
    );
    assert_eq!(answer.trim(), "status=0 body=echo:hello");
    proxy.stop(Duration::from_secs(10));
    echo.kill_now();
}

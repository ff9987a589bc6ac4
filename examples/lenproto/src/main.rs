//! `strait-lenproto`: the Strait proxy with lenproto registered. Everything `strait`
//! does (config file, `--validate`, `--log-format`, admin server, SIGTERM drain) comes
//! from [`strait::run`]; the only addition is one protocol in the registry.
//!
//! `cargo run -p strait-example-lenproto --bin strait-lenproto -- -c examples/lenproto/strait.yaml`

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut registry = strait::builtin_registry();
    if let Err(error) = registry.register(strait_example_lenproto::protocol()) {
        eprintln!("strait-lenproto: {error}");
        return ExitCode::FAILURE;
    }
    strait::run(registry)
}

//! `strait`: runs the proxy on a config file, or checks one with `--validate`
//! ([`strait::run`] on the built-in protocols).

fn main() -> std::process::ExitCode {
    strait::run(strait::builtin_registry())
}

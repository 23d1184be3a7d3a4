//! The `tend` binary: everything lives in the library so tests and later commands share it.

fn main() -> std::process::ExitCode {
    tend::cli::main()
}

//! The `solidarity` binary: see the library's documentation.

fn main() -> std::process::ExitCode {
    solidarity::main()
}

//! The `kubewasm` command. See `kubewasm --help`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}

use std::process::ExitCode;

fn main() -> ExitCode {
    refwarden::cli::main()
}

use std::process::ExitCode;

fn main() -> ExitCode {
    adam_trainer::cli::main()
}

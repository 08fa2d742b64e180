//! The `adam` executable: the command line is the library's ([`adam_trainer::cli`]).

use std::process::ExitCode;

fn main() -> ExitCode {
    adam_trainer::cli::main()
}

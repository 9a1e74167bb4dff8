//! `ldcache`: inspect how glibc resolves an ELF file's libraries.

mod audit;
mod common;
mod explain;
mod show;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ldcache",
    version,
    about = "Per-DSO shared-library resolution cache for Nix and glibc"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Predict, object by object, where the loader finds each needed library and what it costs.
    Explain(explain::Args),
    /// Show the resolution-cache note of a file and whether it is current.
    Show(show::Args),
    /// Predict the failing lookups of every program and library in a tree, without and with notes.
    Audit(audit::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Explain(args) => explain::run(&args),
        Command::Show(args) => show::run(&args),
        Command::Audit(args) => audit::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ldcache: {message}");
            ExitCode::FAILURE
        }
    }
}

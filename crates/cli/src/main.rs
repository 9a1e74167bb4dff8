//! `ldcache`: inspect how glibc resolves an ELF file's libraries.

mod audit;
mod common;
mod copy;
mod embed;
mod error;
mod explain;
mod generate;
mod graft;
mod mapped;
mod refusal;
mod replace;
mod show;
mod sigbus;
mod verify;
mod walk;

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
    /// Write the resolution-cache note into every ELF file under the paths.
    Embed(embed::EmbedArgs),
    /// Remove resolution-cache notes from every ELF file under the paths.
    Strip(embed::StripArgs),
    /// Predict, object by object, where the loader finds each needed library and what it costs.
    Explain(explain::Args),
    /// Show the resolution-cache note of a file and whether it is current.
    Show(show::Args),
    /// Predict the failing lookups of every program and library in a tree, without and with notes.
    Audit(audit::Args),
    /// Check that a rewritten file differs from its original only where ldcache may change it.
    Verify(verify::Args),
    /// Copy a store path to a new one naming grafted store paths, and write its notes.
    Graft(graft::Args),
    /// Print the manual page or shell completions.
    Generate(generate::Args),
}

fn main() -> ExitCode {
    // Output into a closed pipe (`ldcache show f | head -1`) ends the process quietly, as for
    // any Unix tool, instead of a panic in println!. Rust starts programs with SIGPIPE ignored.
    // SAFETY: at the start of main, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Embed(args) => embed::run_embed(&args),
        Command::Strip(args) => embed::run_strip(&args),
        Command::Explain(args) => explain::run(&args),
        Command::Show(args) => show::run(&args),
        Command::Audit(args) => audit::run(&args),
        Command::Verify(args) => verify::run(&args),
        Command::Graft(args) => graft::run(&args),
        Command::Generate(args) => generate::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ldcache: {error}");
            ExitCode::from(error.exit_status())
        }
    }
}

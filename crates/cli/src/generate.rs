//! `ldcache generate`: the manual pages and shell completions, made from the command-line
//! definitions (nix/package.nix installs them).

use std::io::{self, Write};
use std::path::PathBuf;

use clap::CommandFactory;

use crate::error::Error;

/// What to print.
#[derive(clap::ValueEnum, Clone, Copy)]
pub enum Kind {
    /// The manual pages, ldcache(1) and one per command (ldcache-embed(1), ...), into DIR.
    Man,
    /// Completions for bash.
    Bash,
    /// Completions for zsh.
    Zsh,
    /// Completions for fish.
    Fish,
}

#[derive(clap::Args)]
pub struct Args {
    #[arg(value_enum)]
    kind: Kind,
    /// Where the manual pages go (`man` only; completions go to standard output).
    #[arg(required_if_eq("kind", "man"))]
    dir: Option<PathBuf>,
}

pub fn run(args: &Args) -> Result<(), Error> {
    let mut command = crate::Cli::command();
    let shell = match args.kind {
        Kind::Man => {
            let dir = args.dir.as_deref().expect("clap requires DIR for man");
            std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
            return clap_mangen::generate_to(command, dir).map_err(Error::io(dir));
        }
        Kind::Bash => clap_complete::Shell::Bash,
        Kind::Zsh => clap_complete::Shell::Zsh,
        Kind::Fish => clap_complete::Shell::Fish,
    };
    let mut out = io::stdout().lock();
    clap_complete::generate(shell, &mut command, "ldcache", &mut out);
    out.flush()
        .map_err(|e| Error::Other(format!("writing the completions: {e}")))
}

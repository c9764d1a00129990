//! `sixboot generate` (hidden): the man pages and shell completions that the Debian
//! package ships, generated from the one clap definition so they never drift from
//! `--help`. `cargo xtask package-deb` runs it; `sixboot(1)` and one page per
//! subcommand (`sixboot-boot-server(1)`, `sixboot-rom-verify(1)`, …) come from
//! clap_mangen, completions for bash, zsh and fish from clap_complete.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use clap_complete::Shell;

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Write roff man pages (section 1) into this directory.
    #[arg(long)]
    pub man: Option<PathBuf>,
    /// Write shell completions into this directory: `sixboot.bash`, `_sixboot` (zsh),
    /// `sixboot.fish`.
    #[arg(long)]
    pub completions: Option<PathBuf>,
}

pub fn run(args: GenerateArgs, command: clap::Command) -> anyhow::Result<ExitCode> {
    if args.man.is_none() && args.completions.is_none() {
        anyhow::bail!("nothing to generate: give --man DIR and/or --completions DIR");
    }
    if let Some(dir) = &args.man {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        clap_mangen::generate_to(command.clone(), dir)
            .with_context(|| format!("cannot write man pages into {}", dir.display()))?;
    }
    if let Some(dir) = &args.completions {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut command = command.clone();
            clap_complete::generate_to(shell, &mut command, "sixboot", dir).with_context(|| {
                format!("cannot write {shell} completions into {}", dir.display())
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

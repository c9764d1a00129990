//! `cargo xtask package-deb`: the Debian package of the boot server, built by cargo-deb
//! from `[package.metadata.deb]` in the root `Cargo.toml`.
//!
//! Steps: install cargo-deb (`cargo install --locked cargo-deb`) and the Debian tools it
//! calls when missing; build `sixboot` with the chosen cargo profile (release by
//! default); run the built binary's hidden `sixboot generate` to write the man pages
//! (clap_mangen) and shell completions (clap_complete) into `target/deb-assets/`, the
//! paths the package metadata names; then `cargo deb --no-build --profile P`, which
//! picks up the binary, the unit (`packaging/sixboot.service`), the example config and
//! templates (conffiles), the maintainer scripts and the changelog.
//!
//! `--binary PATH` packages a binary built elsewhere instead, as if it were the release
//! build: the tests hand it the debug binary they already built (cargo-deb refuses
//! `target/debug` paths and is dropping `--profile dev`), so checking the package's
//! contents and maintainer scripts costs seconds, not a release build's minutes on two
//! cores. The binary is copied to `target/deb-stage/release/` and cargo-deb is pointed
//! there with `CARGO_TARGET_DIR`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use xshell::{cmd, Shell};

use crate::deps;

/// Debian packages cargo-deb calls: `strip`/`objcopy` (binutils) and `dpkg-shlibdeps`
/// (dpkg-dev) for the `$auto` dependencies.
pub const PACKAGE_DEB_PACKAGES: &[&str] = &["binutils", "dpkg-dev"];

#[derive(Debug, Args)]
pub struct PackageDeb {
    /// The cargo profile whose binary is packaged (`release`, or `dev` for a quick
    /// package of the debug build).
    #[arg(long, default_value = "release")]
    profile: String,
    /// Package the binary already in target/<profile dir>/ instead of running cargo build.
    #[arg(long)]
    no_build: bool,
    /// Package this already built `sixboot` binary (e.g. the tests' debug build) instead
    /// of building one.
    #[arg(long, conflicts_with_all = ["profile", "no_build"])]
    binary: Option<PathBuf>,
    /// Where the .deb goes (default: target/debian/).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Compress faster, into a bigger package (for tests).
    #[arg(long)]
    fast: bool,
    /// Print the apt-get line for missing Debian packages instead of running it.
    #[arg(long)]
    no_install: bool,
}

/// The directory cargo puts a profile's artifacts in (`dev` → `debug`).
pub fn profile_dir(profile: &str) -> &str {
    match profile {
        "dev" | "test" => "debug",
        "release" | "bench" => "release",
        other => other,
    }
}

impl PackageDeb {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let packages = [deps::SERVER_BUILD, PACKAGE_DEB_PACKAGES].concat();
        deps::ensure(sh, &packages, self.no_install)?;
        ensure_cargo_deb(sh, self.no_install)?;
        let root = crate::project_root();
        let mut profile = self.profile.as_str();
        let binary = match &self.binary {
            Some(binary) => {
                // cargo-deb finds built products under $CARGO_TARGET_DIR/release/.
                let stage = root.join("target/deb-stage");
                let release = stage.join("release");
                std::fs::create_dir_all(&release)
                    .with_context(|| format!("cannot create {}", release.display()))?;
                std::fs::copy(binary, release.join("sixboot"))
                    .with_context(|| format!("cannot copy {}", binary.display()))?;
                sh.set_var("CARGO_TARGET_DIR", &stage);
                profile = "release";
                release.join("sixboot")
            }
            None => {
                if !self.no_build {
                    cmd!(
                        sh,
                        "cargo build --locked --profile {profile} --package sixboot --bin sixboot"
                    )
                    .run()?;
                }
                root.join("target")
                    .join(profile_dir(profile))
                    .join("sixboot")
            }
        };
        if !binary.exists() {
            bail!(
                "{} does not exist; build it (drop --no-build) or pick the profile it was built with",
                binary.display()
            );
        }
        let assets = root.join("target/deb-assets");
        generate_assets(sh, &binary, &assets)?;
        let mut args = vec![
            "deb".to_owned(),
            "--no-build".to_owned(),
            "--profile".to_owned(),
            profile.to_owned(),
            "--package".to_owned(),
            "sixboot".to_owned(),
            // `[profile.release] debug = 1` (for profiles and benchmarks) would otherwise
            // keep the symbols in the packaged binary (lintian: unstripped-binary-or-object).
            "--strip".to_owned(),
        ];
        if self.fast {
            args.push("--fast".to_owned());
        }
        if let Some(output) = &self.output {
            std::fs::create_dir_all(output)
                .with_context(|| format!("cannot create {}", output.display()))?;
            args.extend(["--output".to_owned(), output.display().to_string()]);
        }
        let printed = cmd!(sh, "cargo {args...}")
            .read()
            .context("cargo deb failed")?;
        // cargo-deb prints the path of the package it wrote as its last line.
        let deb = printed
            .lines()
            .rev()
            .find(|line| line.trim_end().ends_with(".deb"))
            .map(|line| PathBuf::from(line.trim()))
            .context("cargo deb printed no .deb path")?;
        println!("{}", deb.display());
        Ok(())
    }
}

/// Runs `BINARY generate` into `dir/man` and `dir/completions` (emptied first, so a
/// renamed subcommand leaves no stale page behind).
fn generate_assets(sh: &Shell, binary: &Path, dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot empty {}", dir.display()))?;
    }
    let (man, completions) = (dir.join("man"), dir.join("completions"));
    cmd!(
        sh,
        "{binary} generate --man {man} --completions {completions}"
    )
    .run()
    .context("sixboot generate failed")?;
    Ok(())
}

/// Installs cargo-deb from crates.io when `cargo deb` is not there, as the README's
/// commands install what they need (with `no_install`, says how instead).
pub fn ensure_cargo_deb(sh: &Shell, no_install: bool) -> Result<()> {
    if cmd!(sh, "cargo deb --version")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok()
    {
        return Ok(());
    }
    if no_install {
        bail!("cargo-deb is missing; install it with:\n  cargo install --locked cargo-deb");
    }
    eprintln!("cargo-deb is missing: installing it with `cargo install --locked cargo-deb`");
    cmd!(sh, "cargo install --locked cargo-deb")
        .run()
        .context("cannot install cargo-deb; install it yourself: cargo install --locked cargo-deb")
}

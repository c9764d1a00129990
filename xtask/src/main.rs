//! Development tasks for sixboot: `cargo xtask <task>`.
//!
//! One module per task, each a clap `Args` struct with `run(self, sh: &Shell)`. Every
//! external tool runs through xshell's `cmd!` from the project root.

use anyhow::Result;
use clap::{Parser, Subcommand};
use xshell::Shell;

mod bench;
mod deps;
mod firmware;
mod package_deb;
mod qemu_test;
mod readme;
mod test;
#[cfg(test)]
mod tidy;

/// sixboot's development tasks.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Build IPv6-by-default iPXE (or FlexBoot) images for ConnectX-3 to 7, QEMU and
    /// UEFI (x86-64, ARM64), verify and package them.
    BuildRom(firmware::BuildRom),
    /// Install what the tests need, then run fmt, clippy and every test.
    Test(test::Test),
    /// Boot Linux in QEMU over IPv6 from the boot server, console shown live.
    QemuTest(qemu_test::QemuTest),
    /// Measure sixboot against real peers in one run and print a table.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Build the Debian package (binary, systemd unit, config, man pages, completions).
    PackageDeb(package_deb::PackageDeb),
    /// Rewrite README's benchmark tables from the committed reports in bench/results/.
    Readme(readme::Readme),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = (|| -> Result<()> {
        let sh = Shell::new()?;
        sh.change_dir(project_root());
        match cli.task {
            Task::BuildRom(task) => task.run(&sh),
            Task::Test(task) => task.run(&sh),
            Task::QemuTest(task) => task.run(&sh),
            Task::Bench(task) => task.run(&sh),
            Task::PackageDeb(task) => task.run(&sh),
            Task::Readme(task) => task.run(&sh),
        }
    })();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The workspace root, whatever directory cargo was started from.
pub fn project_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

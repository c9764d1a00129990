//! A throwaway PostgreSQL cluster for tests and benchmarks: `initdb` into a fresh
//! directory under `/tmp`, `pg_ctl` with the Unix socket in that directory (no TCP
//! port), trust authentication for the one role `sixboot`, database `sixboot`. Never
//! the machine's own cluster. Removed in `Drop`.
//!
//! PostgreSQL refuses to run as root, and tests run as root: then `initdb` and the
//! server run as `nobody` through `setpriv` (util-linux), in a directory `nobody`
//! owns. `fsync = off`: a test cluster needs no durability against power loss, and a
//! crash of the server (`pg_ctl stop -m immediate`, what [`Cluster::kill`] does) still
//! recovers from the WAL in the page cache.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::need;

/// Debian's server binaries (`initdb`, `pg_ctl`, `postgres`) are not on `PATH`.
pub fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// The server's binaries, or a recorded skip (a CI failure: `.ci/run` installs
/// Debian's `postgresql`).
pub fn need_server() -> Option<PathBuf> {
    let found = bin_dir();
    if found.is_none() {
        need::missing(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb; Debian package \
             postgresql; `cargo xtask test` installs it)",
        );
    }
    found
}

/// Why the cluster could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{program} failed ({status}): {stderr}")]
    Failed {
        program: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("cannot prepare {}: {source}", path.display())]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A running throwaway cluster.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    as_root: bool,
}

fn run(mut command: Command) -> Result<Output, ClusterError> {
    let program = format!("{command:?}");
    let output = command.output().map_err(|source| ClusterError::Spawn {
        program: program.clone(),
        source,
    })?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(ClusterError::Failed {
            program,
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

impl Cluster {
    /// Creates and starts a cluster in `/tmp/sixboot-pg-{tag}-{pid}` with the server
    /// binaries in `bin` (from [`need_server`]).
    pub fn start(bin: &Path, tag: &str) -> Result<Cluster, ClusterError> {
        let dir = std::env::temp_dir().join(format!("sixboot-pg-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let dir_error = |source| ClusterError::Dir {
            path: dir.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(dir_error)?;
        let as_root = nix::unistd::Uid::effective().is_root();
        let cluster = Cluster {
            dir,
            bin: bin.to_owned(),
            as_root,
        };
        if as_root {
            let mut chown = Command::new("chown");
            chown.arg("nobody:nogroup").arg(&cluster.dir);
            run(chown)?;
        }
        let mut initdb = cluster.command("initdb");
        initdb
            .arg("-D")
            .arg(cluster.data())
            .args(["-A", "trust", "-U", "sixboot", "-E", "UTF8", "--no-sync"])
            .args(["--no-instructions"]);
        run(initdb)?;
        cluster.start_server()?;
        let mut createdb = cluster.command("createdb");
        createdb
            .arg("-h")
            .arg(&cluster.dir)
            .args(["-U", "sixboot", "sixboot"]);
        run(createdb)?;
        Ok(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A command for one of the server's binaries, as `nobody` when we are root.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_root {
            let mut command = Command::new("setpriv");
            command
                .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
                .arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    fn start_server(&self) -> Result<(), ClusterError> {
        let options = format!(
            "-k {} -c listen_addresses='' -c fsync=off -c full_page_writes=off \
             -c shared_buffers=16MB -c max_connections=40",
            self.dir.display()
        );
        let mut pg_ctl = self.command("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-o", &options, "-w", "-t", "30", "start"]);
        run(pg_ctl).map(|_| ())
    }

    /// The directory holding the Unix socket (the `host` of a connection).
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    /// A libpq connection string for database `sixboot` as role `sixboot`.
    pub fn url(&self) -> String {
        format!("host={} user=sixboot dbname=sixboot", self.dir.display())
    }

    /// The server's log, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Kills the server as a crash would (`pg_ctl stop -m immediate`).
    pub fn kill(&self) -> Result<(), ClusterError> {
        let mut pg_ctl = self.command("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"]);
        run(pg_ctl).map(|_| ())
    }

    /// Starts the server again after [`Cluster::kill`] (crash recovery).
    pub fn restart(&self) -> Result<(), ClusterError> {
        self.start_server()
    }

    /// Runs SQL with `psql` and returns its unaligned, tuples-only output.
    pub fn psql(&self, sql: &str) -> Result<String, ClusterError> {
        let mut psql = Command::new(self.bin.join("psql"));
        psql.arg("-h").arg(&self.dir).args([
            "-U",
            "sixboot",
            "-d",
            "sixboot",
            "-XAtq",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ]);
        let output = run(psql)?;
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let mut pg_ctl = self.command("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"]);
        let _ = pg_ctl.output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

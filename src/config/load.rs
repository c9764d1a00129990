//! The config module's one piece of I/O: [`Config::load`] reads the file and hands its
//! text to the pure [`Config::from_toml`]. Kept apart so that the rest of `config` can be
//! listed as pure (ARCHITECTURE.md, checked by `xtask/src/tidy.rs`).

use std::path::Path;

use anyhow::Context;

use super::Config;

impl Config {
    /// Reads and validates a config file: the file's text through [`Config::from_toml`].
    /// Errors name the file (cannot read it) or list every problem in it.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        Ok(Config::from_toml(path, &text)?)
    }
}

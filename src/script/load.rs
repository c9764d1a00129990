//! The script module's one piece of I/O: [`Templates::load`] reads the template files a
//! config names and hands their text to the pure [`Templates::new`]. Kept apart so that
//! the rest of `script` can be listed as pure (ARCHITECTURE.md, checked by
//! `xtask/src/tidy.rs`).

use std::path::PathBuf;

use super::templates::{
    base_url, rename, template_name, TemplateError, Templates, DEFAULT_KICKSTART_TEMPLATE,
    DEFAULT_SCRIPT_TEMPLATE, KICKSTART,
};
use crate::config::Config;

impl Templates {
    /// Reads the templates a config names (or the built-in ones) and compiles them.
    pub fn load(config: &Config) -> Result<Templates, TemplateError> {
        let read = |path: &Option<PathBuf>, default: &str| match path {
            Some(path) => std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
                path: path.clone(),
                source,
            }),
            None => Ok(default.to_owned()),
        };
        let script = read(&config.http.script_template, DEFAULT_SCRIPT_TEMPLATE)?;
        let kickstart = read(&config.http.kickstart_template, DEFAULT_KICKSTART_TEMPLATE)?;
        let script_name = template_name(&config.http.script_template, "script");
        let kickstart_name = template_name(&config.http.kickstart_template, "kickstart");
        Templates::new(&script, &kickstart, &base_url(config)).map_err(|err| match &err {
            TemplateError::Syntax { name, .. } if name == KICKSTART => rename(err, &kickstart_name),
            _ => rename(err, &script_name),
        })
    }
}

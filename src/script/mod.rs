//! iPXE scripts: the lint that guards every script we serve, and the templates that
//! produce them.
//!
//! One linter, whose verdicts are iPXE's own: [`lint`] reads a script with ports of the
//! iPXE functions that read it ([`ipxe`]: `script_probe`, `process_script`, `system`'s
//! tokenizer, `expand_settings`, `parse_uri`, `uri_decode`, `uri_port`, `ipv6_sock_aton`,
//! `inet6_aton`), so it reports an **error** only for what iPXE rejects or misreads and a
//! **warning** for what runs but surprises; each problem names its [`rules::Rule`].
//! Installer kernel command lines are checked by table rows in [`kernel`] (locations in
//! d-i's and Anaconda's parameters, dracut's `ip=`/`rd.route=`) and one line rule (an
//! Anaconda boot without an IPv6 `ip=`). Used by `sixboot script lint`, `config check`,
//! the server's start-up and per-request check ([`Templates`], through
//! `crate::installer::Catalog`) and `cargo xtask build-rom --embed`. The corpus under
//! `tests/lint_corpus/` and the differential test `tests/lint_ipxe.rs` hold every verdict
//! against real iPXE.
//!
//! Pure: nothing here does I/O (`crate::installer::Catalog::load` reads template files).

pub mod commands;
pub mod ipxe;
pub mod kernel;
mod lint;
pub mod rules;
mod templates;
pub mod uri;

pub use lint::{errors, has_errors, ipxe_problems, lint, lint_urls, LintProblem};
pub use rules::{Authority, Rule, Severity, RULES};
pub(crate) use templates::rename;
pub use templates::{
    base_url, HostContext, PreparedHost, TemplateError, TemplateReport, TemplateWarning, Templates,
};

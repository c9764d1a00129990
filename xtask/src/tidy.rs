//! Tidy: the rules that keep the code's shape true, as tests that `cargo test` runs
//! (`cargo test -p xtask`, so also `cargo test --workspace` and `cargo xtask test`).
//! Modelled on rust-analyzer's `xtask/src/tidy.rs`.
//!
//! - A module in ARCHITECTURE.md's list of pure modules (the block between the
//!   `tidy:pure-modules` markers) names no file system, socket, process, environment,
//!   async runtime, logging, system-call crate or clock outside `#[cfg(test)]`
//!   ([`IMPURE`]). Address types come from `core::net`.
//! - Every `.rs` file starts with its `//!` doc.
//! - No test is `#[ignore]`d: a test that cannot run skips through `sixboot_lab::need`.
//! - Every repository path ARCHITECTURE.md names exists, and every module under `src/`
//!   and `lab/src/` is in its code map.
//!
//! Files are read as Rust (syn), not as text: comments, strings and doc text never count,
//! and every problem is reported with its file and line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};
use quote::ToTokens;
use syn::visit::Visit;

/// What a pure module must not name outside `#[cfg(test)]`: a path (matched at the start
/// of a path, or anywhere in it for the clock reads) and why.
const IMPURE: &[Rule] = &[
    Rule::prefix("std::fs", "file system: take bytes from the caller"),
    Rule::prefix(
        "std::net",
        "sockets: address types are core::net::{Ipv6Addr, SocketAddr, …}",
    ),
    Rule::prefix("std::process", "processes"),
    Rule::prefix("std::env", "environment: take the value from the caller"),
    Rule::prefix("tokio", "async runtime and its I/O"),
    Rule::prefix(
        "tracing",
        "logging: return what happened and let the shell log it",
    ),
    Rule::prefix("nix", "system calls"),
    Rule::prefix("rustix", "system calls"),
    Rule::prefix("socket2", "sockets"),
    Rule::anywhere("Instant::now", "the clock: take `now` as an argument"),
    Rule::anywhere("SystemTime::now", "the clock: take `now` as an argument"),
];

/// Known violations of [`IMPURE`] in pure modules, each with its owner and plan:
/// (file, or directory ending in `/`; rule path; why it is still there). Tolerated while
/// present; an entry whose violation is gone fails the test, so this list only shrinks.
/// Empty: every pure module is pure.
const KNOWN_IMPURE: &[(&str, &str, &str)] = &[];

/// One forbidden path in pure modules.
struct Rule {
    path: &'static str,
    /// Matches anywhere in a path (`std::time::Instant::now`), not only at its start.
    anywhere: bool,
    why: &'static str,
}

impl Rule {
    const fn prefix(path: &'static str, why: &'static str) -> Rule {
        Rule {
            path,
            anywhere: false,
            why,
        }
    }

    const fn anywhere(path: &'static str, why: &'static str) -> Rule {
        Rule {
            path,
            anywhere: true,
            why,
        }
    }

    fn matches(&self, path: &str) -> bool {
        let path: Vec<&str> = path.split("::").collect();
        let rule: Vec<&str> = self.path.split("::").collect();
        if self.anywhere {
            path.windows(rule.len()).any(|window| window == rule)
        } else {
            path.starts_with(&rule)
        }
    }
}

/// One broken rule, printed as `file:line: message`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Problem {
    file: String,
    line: usize,
    message: String,
}

fn report(what: &str, mut problems: Vec<Problem>) {
    if problems.is_empty() {
        return;
    }
    problems.sort();
    problems.dedup();
    let mut text = format!("tidy: {what}: {} problem(s)\n", problems.len());
    for p in &problems {
        text.push_str(&format!("{}:{}: {}\n", p.file, p.line, p.message));
    }
    panic!("{text}");
}

/// The repository: every file and directory below the root (paths relative to it, with
/// `/`), except build output and VCS data.
struct Repo {
    root: PathBuf,
    files: BTreeSet<String>,
    dirs: BTreeSet<String>,
}

/// Not part of the source: build output (`.gitignore`d) and VCS data.
const NOT_SOURCE: &[&str] = &[
    ".git",
    "target",
    "dist",
    "dist-flexboot",
    "fuzz/target",
    "fuzz/corpus",
    "fuzz/artifacts",
];

impl Repo {
    fn load() -> Repo {
        let root = crate::project_root();
        let mut repo = Repo {
            root: root.clone(),
            files: BTreeSet::new(),
            dirs: BTreeSet::new(),
        };
        repo.walk(&root, "");
        repo
    }

    fn walk(&mut self, dir: &Path, relative: &str) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if relative.is_empty() {
                name
            } else {
                format!("{relative}/{name}")
            };
            if NOT_SOURCE.contains(&path.as_str()) {
                continue;
            }
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                self.dirs.insert(path.clone());
                self.walk(&entry.path(), &path);
            } else {
                self.files.insert(path);
            }
        }
    }

    fn rust_files(&self) -> impl Iterator<Item = &String> {
        self.files.iter().filter(|f| f.ends_with(".rs"))
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.root.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
    }

    fn parse(&self, file: &str) -> syn::File {
        syn::parse_file(&self.read(file)).unwrap_or_else(|e| {
            let at = e.span().start();
            panic!(
                "{file}:{}:{}: not Rust that syn parses: {e}",
                at.line, at.column
            )
        })
    }

    fn exists(&self, path: &str) -> bool {
        self.files.contains(path) || self.dirs.contains(path)
    }
}

/// Whether an attribute list holds `#[cfg(test)]` (also `cfg(all(test, …))`; not
/// `cfg(not(test))`).
fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("cfg") && {
            let idents = idents(attr.meta.to_token_stream());
            idents.iter().any(|i| i == "test") && !idents.iter().any(|i| i == "not")
        }
    })
}

fn idents(stream: TokenStream) -> Vec<String> {
    let mut out = Vec::new();
    for tree in stream {
        match tree {
            TokenTree::Ident(ident) => out.push(ident.to_string()),
            TokenTree::Group(group) => out.extend(idents(group.stream())),
            _ => {}
        }
    }
    out
}

/// The file a `mod name;` declared in `file` lives in (`#[path]` honoured), if it exists.
fn module_file(repo: &Repo, file: &str, item: &syn::ItemMod) -> Option<String> {
    let dir = Path::new(file).parent().unwrap_or(Path::new(""));
    let explicit = item.attrs.iter().find_map(|attr| match &attr.meta {
        syn::Meta::NameValue(nv) if nv.path.is_ident("path") => match &nv.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Some(s.value()),
            _ => None,
        },
        _ => None,
    });
    let join = |p: PathBuf| p.to_string_lossy().replace('\\', "/");
    if let Some(path) = explicit {
        return Some(join(dir.join(path)));
    }
    let name = item.ident.to_string();
    let stem = Path::new(file).file_stem()?.to_string_lossy().into_owned();
    let base = if ["mod", "lib", "main"].contains(&stem.as_str()) {
        dir.to_path_buf()
    } else {
        dir.join(stem)
    };
    [
        join(base.join(format!("{name}.rs"))),
        join(base.join(&name).join("mod.rs")),
    ]
    .into_iter()
    .find(|candidate| repo.files.contains(candidate))
}

/// Files that are only `#[cfg(test)]` modules (`#[cfg(test)] mod tests;`), and the
/// files below them.
fn test_only_files(repo: &Repo, facts: &BTreeMap<String, Facts>) -> BTreeSet<String> {
    let roots: BTreeSet<&String> = facts.values().flat_map(|f| &f.test_mods).collect();
    repo.rust_files()
        .filter(|f| {
            roots.iter().any(|root| {
                f == root
                    || root
                        .strip_suffix("mod.rs")
                        .is_some_and(|dir| f.starts_with(dir))
                    || f.starts_with(&format!("{}/", root.trim_end_matches(".rs")))
            })
        })
        .cloned()
        .collect()
}

/// What the checks need from one `.rs` file.
struct Facts {
    has_module_doc: bool,
    /// Lines of `#[ignore]` attributes.
    ignore_lines: Vec<usize>,
    /// Paths named outside `#[cfg(test)]` items, with their lines.
    paths: Vec<(usize, String)>,
    /// The files of its `#[cfg(test)] mod name;` declarations.
    test_mods: Vec<String>,
}

/// The repository and every `.rs` file's [`Facts`], read and parsed once per test run
/// (syn in a debug build is the slow part).
struct Scan {
    repo: Repo,
    facts: BTreeMap<String, Facts>,
    test_only: BTreeSet<String>,
}

fn scan() -> &'static Scan {
    static SCAN: OnceLock<Scan> = OnceLock::new();
    SCAN.get_or_init(|| {
        let repo = Repo::load();
        let facts: BTreeMap<String, Facts> = repo
            .rust_files()
            .map(|file| {
                let parsed = repo.parse(file);
                let mut test_mods = BTreeSet::new();
                collect_test_mods(&repo, file, &parsed.items, false, &mut test_mods);
                let mut paths = Vec::new();
                paths_outside_tests(&parsed.items, &mut paths);
                let mut ignore_lines = Vec::new();
                ignore_attributes(parsed.to_token_stream(), &mut ignore_lines);
                let has_module_doc = parsed.attrs.iter().any(|attr| {
                    matches!(attr.style, syn::AttrStyle::Inner(_)) && attr.path().is_ident("doc")
                });
                let facts = Facts {
                    has_module_doc,
                    ignore_lines,
                    paths,
                    test_mods: test_mods.into_iter().collect(),
                };
                (file.clone(), facts)
            })
            .collect();
        let test_only = test_only_files(&repo, &facts);
        Scan {
            repo,
            facts,
            test_only,
        }
    })
}

fn collect_test_mods(
    repo: &Repo,
    file: &str,
    items: &[syn::Item],
    in_test: bool,
    out: &mut BTreeSet<String>,
) {
    for item in items {
        if let syn::Item::Mod(module) = item {
            let test = in_test || is_cfg_test(&module.attrs);
            match &module.content {
                Some((_, inner)) => collect_test_mods(repo, file, inner, test, out),
                None if test => out.extend(module_file(repo, file, module)),
                None => {}
            }
        }
    }
}

/// Every path named outside `#[cfg(test)]` items, with its line: `use` trees expanded
/// (`use std::{fs, net}` names `std::fs` and `std::net`), and paths in code, attributes
/// and macro bodies (`tracing::warn!(…)` names `tracing::warn`).
fn paths_outside_tests(items: &[syn::Item], out: &mut Vec<(usize, String)>) {
    for item in items {
        let attrs: &[syn::Attribute] = match item {
            syn::Item::Const(i) => &i.attrs,
            syn::Item::Enum(i) => &i.attrs,
            syn::Item::ExternCrate(i) => &i.attrs,
            syn::Item::Fn(i) => &i.attrs,
            syn::Item::ForeignMod(i) => &i.attrs,
            syn::Item::Impl(i) => &i.attrs,
            syn::Item::Macro(i) => &i.attrs,
            syn::Item::Mod(i) => &i.attrs,
            syn::Item::Static(i) => &i.attrs,
            syn::Item::Struct(i) => &i.attrs,
            syn::Item::Trait(i) => &i.attrs,
            syn::Item::TraitAlias(i) => &i.attrs,
            syn::Item::Type(i) => &i.attrs,
            syn::Item::Union(i) => &i.attrs,
            syn::Item::Use(i) => &i.attrs,
            _ => &[],
        };
        if is_cfg_test(attrs) {
            continue;
        }
        if let syn::Item::Mod(syn::ItemMod {
            content: Some((_, inner)),
            ..
        }) = item
        {
            paths_outside_tests(inner, out);
            continue;
        }
        let mut uses = UseCollector(Vec::new());
        uses.visit_item(item);
        out.extend(uses.0);
        token_paths(item.to_token_stream(), out);
    }
}

/// Every `use` below an item, expanded to full paths.
struct UseCollector(Vec<(usize, String)>);

impl<'ast> Visit<'ast> for UseCollector {
    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        let line = item.use_token.span.start().line;
        expand_use(&item.tree, String::new(), &mut |path| {
            self.0.push((line, path))
        });
    }
}

fn expand_use(tree: &syn::UseTree, prefix: String, emit: &mut dyn FnMut(String)) {
    let join = |name: String| {
        if prefix.is_empty() {
            name
        } else {
            format!("{prefix}::{name}")
        }
    };
    match tree {
        syn::UseTree::Path(p) => expand_use(&p.tree, join(p.ident.to_string()), emit),
        syn::UseTree::Name(n) => emit(join(n.ident.to_string())),
        syn::UseTree::Rename(r) => emit(join(r.ident.to_string())),
        syn::UseTree::Glob(_) => emit(join("*".into())),
        syn::UseTree::Group(g) => {
            for tree in &g.items {
                expand_use(tree, prefix.clone(), emit);
            }
        }
    }
}

/// Paths written as `a::b::c` in a token stream (groups entered), with the line of
/// their first segment.
fn token_paths(stream: TokenStream, out: &mut Vec<(usize, String)>) {
    let tokens: Vec<TokenTree> = stream.into_iter().collect();
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            TokenTree::Group(group) => {
                token_paths(group.stream(), out);
                i += 1;
            }
            TokenTree::Ident(first) => {
                let line = first.span().start().line;
                let mut path = first.to_string();
                i += 1;
                while let (
                    Some(TokenTree::Punct(a)),
                    Some(TokenTree::Punct(b)),
                    Some(TokenTree::Ident(next)),
                ) = (tokens.get(i), tokens.get(i + 1), tokens.get(i + 2))
                {
                    if a.as_char() != ':' || a.spacing() != Spacing::Joint || b.as_char() != ':' {
                        break;
                    }
                    path.push_str("::");
                    path.push_str(&next.to_string());
                    i += 3;
                }
                out.push((line, path));
            }
            _ => i += 1,
        }
    }
}

/// ARCHITECTURE.md's list of pure modules, between the `tidy:pure-modules` markers: each
/// line's first backticked path is pure (a file, or a directory ending in `/` for every
/// file below it), or an exception when the line starts with `- except`. Lines numbered.
struct PureList {
    pure: Vec<(usize, String)>,
    except: Vec<(usize, String)>,
}

impl PureList {
    fn parse(architecture: &str) -> PureList {
        let begin = architecture
            .lines()
            .position(|l| l.contains("<!-- tidy:pure-modules"))
            .expect("ARCHITECTURE.md has no `<!-- tidy:pure-modules` block");
        let mut list = PureList {
            pure: Vec::new(),
            except: Vec::new(),
        };
        for (n, line) in architecture.lines().enumerate().skip(begin + 1) {
            if line.contains("<!-- /tidy:pure-modules") {
                assert!(
                    !list.pure.is_empty(),
                    "ARCHITECTURE.md's pure-module list is empty"
                );
                return list;
            }
            if let Some(path) = line.split('`').nth(1) {
                let entry = (n + 1, path.to_owned());
                if line.trim_start().starts_with("- except") {
                    list.except.push(entry);
                } else {
                    list.pure.push(entry);
                }
            }
        }
        panic!(
            "ARCHITECTURE.md's pure-module list has no `<!-- /tidy:pure-modules -->` end marker"
        );
    }

    fn contains(&self, file: &str) -> bool {
        self.pure.iter().any(|(_, entry)| covers(entry, file))
            && !self.except.iter().any(|(_, entry)| covers(entry, file))
    }
}

/// Whether a list entry (a file, or a directory ending in `/`) covers `file`.
fn covers(entry: &str, file: &str) -> bool {
    match entry.strip_suffix('/') {
        Some(dir) => file.starts_with(&format!("{dir}/")),
        None => file == entry,
    }
}

/// Problems of the pure modules: every [`IMPURE`] path outside tests, minus the known
/// ones; and every known one that is gone.
fn impure_uses(scan: &Scan, architecture: &str) -> Vec<Problem> {
    let repo = &scan.repo;
    let list = PureList::parse(architecture);
    let mut problems = Vec::new();
    for (line, entry) in list.pure.iter().chain(&list.except) {
        if !repo.exists(entry.trim_end_matches('/')) {
            problems.push(Problem {
                file: "ARCHITECTURE.md".into(),
                line: *line,
                message: format!("the pure-module list names `{entry}`, which does not exist"),
            });
        }
    }
    let mut known_seen = vec![false; KNOWN_IMPURE.len()];
    for (file, facts) in &scan.facts {
        if !list.contains(file) || scan.test_only.contains(file) {
            continue;
        }
        // One problem per rule and line: `use std::net::{Ipv6Addr, SocketAddr}` is one.
        let mut reported = BTreeSet::new();
        for (line, path) in &facts.paths {
            let line = *line;
            for rule in IMPURE.iter().filter(|rule| rule.matches(path)) {
                if !reported.insert((line, rule.path)) {
                    continue;
                }
                let known = KNOWN_IMPURE
                    .iter()
                    .position(|(f, r, _)| covers(f, file) && *r == rule.path);
                match known {
                    Some(k) => known_seen[k] = true,
                    None => problems.push(Problem {
                        file: file.clone(),
                        line,
                        message: format!(
                            "`{path}` in a module ARCHITECTURE.md lists as pure: {}",
                            rule.why
                        ),
                    }),
                }
            }
        }
    }
    for ((file, rule, _), seen) in KNOWN_IMPURE.iter().zip(known_seen) {
        if !seen {
            problems.push(Problem {
                file: "xtask/src/tidy.rs".into(),
                line: 0,
                message: format!(
                    "KNOWN_IMPURE lists `{rule}` in {file}, which no longer uses it: \
                     remove the entry"
                ),
            });
        }
    }
    problems
}

#[test]
fn pure_modules_do_no_io_and_read_no_clock() {
    let scan = scan();
    let architecture = scan.repo.read("ARCHITECTURE.md");
    report(
        "pure modules (ARCHITECTURE.md, tidy:pure-modules)",
        impure_uses(scan, &architecture),
    );
}

#[test]
fn every_rust_file_starts_with_its_module_doc() {
    let problems = scan()
        .facts
        .iter()
        .filter(|(_, facts)| !facts.has_module_doc)
        .map(|(file, _)| Problem {
            file: file.clone(),
            line: 1,
            message: "no `//!` doc: say what this file is for".into(),
        })
        .collect();
    report("module docs", problems);
}

/// `#[ignore]` or `#[cfg_attr(…, ignore)]` anywhere in a token stream, macro bodies
/// (`proptest! { … }`) included.
fn ignore_attributes(stream: TokenStream, out: &mut Vec<usize>) {
    let tokens: Vec<TokenTree> = stream.into_iter().collect();
    for (i, token) in tokens.iter().enumerate() {
        let TokenTree::Group(group) = token else {
            continue;
        };
        let after_hash = matches!(
            tokens[..i].last(),
            Some(TokenTree::Punct(p)) if p.as_char() == '#' || p.as_char() == '!'
        );
        if group.delimiter() == Delimiter::Bracket && after_hash {
            let inner: Vec<TokenTree> = group.stream().into_iter().collect();
            let ignored = match inner.first() {
                Some(TokenTree::Ident(name)) if name == "ignore" => true,
                Some(TokenTree::Ident(name)) if name == "cfg_attr" => {
                    idents(group.stream()).iter().any(|i| i == "ignore")
                }
                _ => false,
            };
            if ignored {
                out.push(group.span().start().line);
            }
        }
        ignore_attributes(group.stream(), out);
    }
}

#[test]
fn no_test_is_ignored() {
    let mut problems = Vec::new();
    for (file, facts) in &scan().facts {
        problems.extend(facts.ignore_lines.iter().map(|&line| {
            Problem {
                file: file.clone(),
                line,
                message: "#[ignore]: a test that cannot run here returns early through \
                      `sixboot_lab::need`, which prints and records the skip"
                    .into(),
            }
        }));
    }
    report("ignored tests", problems);
}

/// A backticked span of ARCHITECTURE.md (fenced code blocks left out) and its line.
fn code_spans(markdown: &str) -> Vec<(usize, String)> {
    let mut spans = Vec::new();
    let mut fenced = false;
    for (n, line) in markdown.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let parts: Vec<&str> = line.split('`').collect();
        for (i, part) in parts.iter().enumerate() {
            if i % 2 == 1 && i + 1 < parts.len() {
                spans.push((n + 1, (*part).to_owned()));
            }
        }
    }
    spans
}

/// A span that names a repository path: no spaces, a `/`, and a first segment that is a
/// top-level directory of the repository (so `state_dir/…`, `dist/`, `/run/lock` and
/// paths inside the iPXE tree are not taken for ours). `{a,b}` expands; `<x>` and `*`
/// match within one path segment.
fn repo_path_patterns(repo: &Repo, span: &str) -> Option<Vec<String>> {
    if span.contains(char::is_whitespace) || !span.contains('/') {
        return None;
    }
    let first = span.split('/').next()?;
    if first.is_empty() || !repo.dirs.contains(first) {
        return None;
    }
    Some(expand_braces(span))
}

fn expand_braces(pattern: &str) -> Vec<String> {
    let (Some(open), Some(close)) = (pattern.find('{'), pattern.find('}')) else {
        return vec![pattern.to_owned()];
    };
    if close < open {
        return vec![pattern.to_owned()];
    }
    pattern[open + 1..close]
        .split(',')
        .flat_map(|choice| {
            expand_braces(&format!(
                "{}{choice}{}",
                &pattern[..open],
                &pattern[close + 1..]
            ))
        })
        .collect()
}

/// Whether `path` matches `pattern` segment by segment (`*` and `<…>` match any run of
/// characters within a segment).
fn glob_matches(pattern: &str, path: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    pattern.len() == path.len()
        && pattern
            .iter()
            .zip(&path)
            .all(|(p, s)| segment_matches(p.as_bytes(), s.as_bytes()))
}

fn segment_matches(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.first() {
        None => text.is_empty(),
        Some(b'*') => (0..=text.len()).any(|skip| segment_matches(&pattern[1..], &text[skip..])),
        Some(b'<') => match pattern.iter().position(|&c| c == b'>') {
            Some(end) => {
                (0..=text.len()).any(|skip| segment_matches(&pattern[end + 1..], &text[skip..]))
            }
            None => text.first() == Some(&b'<') && segment_matches(&pattern[1..], &text[1..]),
        },
        Some(&c) => text.first() == Some(&c) && segment_matches(&pattern[1..], &text[1..]),
    }
}

/// The repository paths a pattern matches (a trailing `/` asks for a directory).
fn matching_paths<'r>(repo: &'r Repo, pattern: &str) -> Vec<&'r String> {
    match pattern.strip_suffix('/') {
        Some(dir) => repo.dirs.iter().filter(|d| glob_matches(dir, d)).collect(),
        None => repo
            .files
            .iter()
            .chain(&repo.dirs)
            .filter(|p| glob_matches(pattern, p))
            .collect(),
    }
}

#[test]
fn architecture_names_only_paths_that_exist() {
    let repo = &scan().repo;
    let architecture = repo.read("ARCHITECTURE.md");
    let mut problems = Vec::new();
    for (line, span) in code_spans(&architecture) {
        for pattern in repo_path_patterns(repo, &span).unwrap_or_default() {
            if matching_paths(repo, &pattern).is_empty() {
                problems.push(Problem {
                    file: "ARCHITECTURE.md".into(),
                    line,
                    message: format!("`{span}` names `{pattern}`, which does not exist"),
                });
            }
        }
    }
    report("ARCHITECTURE.md paths", problems);
}

/// Whether the code map accounts for `file`: a path pattern matches it; or it is a
/// `mod.rs` whose directory is named; or its bare file name is backticked in a
/// top-level bullet (with its nested bullets) or heading that names one of its
/// ancestor directories, or a file beside it (`- \`src/server/\` — … \`dhcp.rs\``).
fn in_code_map(repo: &Repo, architecture: &str, file: &str) -> bool {
    let spans = code_spans(architecture);
    let named: Vec<String> = spans
        .iter()
        .filter_map(|(_, span)| repo_path_patterns(repo, span))
        .flatten()
        .collect();
    if named
        .iter()
        .any(|p| glob_matches(p.trim_end_matches('/'), file))
    {
        return true;
    }
    let parent = file.rsplit_once('/').map_or("", |(dir, _)| dir);
    if file.ends_with("/mod.rs")
        && named
            .iter()
            .any(|p| glob_matches(p.trim_end_matches('/'), parent))
    {
        return true;
    }
    let name = file.rsplit('/').next().unwrap_or(file);
    code_map_blocks(architecture).iter().any(|block| {
        let block_spans = code_spans(block);
        let names_file = block_spans.iter().any(|(_, s)| s == name);
        let names_ancestor = block_spans
            .iter()
            .filter_map(|(_, span)| repo_path_patterns(repo, span))
            .flatten()
            .any(|pattern| {
                let pattern = pattern.trim_end_matches('/');
                let dir = if pattern.ends_with(".rs") {
                    pattern.rsplit_once('/').map_or("", |(dir, _)| dir)
                } else {
                    pattern
                };
                let mut ancestor = Some(parent);
                while let Some(a) = ancestor {
                    if glob_matches(dir, a) {
                        return true;
                    }
                    ancestor = a.rsplit_once('/').map(|(up, _)| up);
                }
                false
            });
        names_file && names_ancestor
    })
}

/// Headings, and top-level bullets with their continuation lines and nested bullets.
fn code_map_blocks(markdown: &str) -> Vec<String> {
    let mut blocks: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        let starts_block = line.starts_with("- ") || line.starts_with('#');
        let ends_block = line.trim().is_empty() || (!line.starts_with(' ') && !starts_block);
        if starts_block || ends_block {
            blocks.extend(current.take());
        }
        if starts_block {
            current = Some(String::new());
        }
        if let Some(block) = current.as_mut() {
            block.push_str(line);
            block.push('\n');
        }
        if line.starts_with('#') {
            blocks.extend(current.take());
        }
    }
    blocks.extend(current);
    blocks
}

#[test]
fn every_module_under_src_is_in_the_code_map() {
    let scan = scan();
    let architecture = scan.repo.read("ARCHITECTURE.md");
    let problems = scan
        .repo
        .rust_files()
        .filter(|f| f.starts_with("src/") || f.starts_with("lab/src/"))
        .filter(|f| !scan.test_only.contains(*f))
        .filter(|f| !in_code_map(&scan.repo, &architecture, f))
        .map(|file| Problem {
            file: file.clone(),
            line: 1,
            message: "not in ARCHITECTURE.md's code map: add a bullet that says what it \
                      is for"
                .into(),
        })
        .collect();
    report("code map", problems);
}

#[cfg(test)]
mod self_tests {
    use super::*;

    fn paths_of(source: &str) -> Vec<String> {
        let mut out = Vec::new();
        paths_outside_tests(&syn::parse_file(source).unwrap().items, &mut out);
        out.into_iter().map(|(_, p)| p).collect()
    }

    #[test]
    fn finds_grouped_uses_macro_paths_and_clock_reads_but_not_tests_comments_or_strings() {
        let paths = paths_of(
            "//! doc naming std::fs\n\
             use std::{fs, net::Ipv6Addr};\n\
             fn f() { tracing::warn!(\"std::process\"); let t = std::time::Instant::now(); }\n\
             #[cfg(test)] mod tests { use tokio::net::UdpSocket; }\n",
        );
        let broken = |path: &str| IMPURE.iter().filter(|r| r.matches(path)).count();
        let hits: Vec<&String> = paths.iter().filter(|p| broken(p) > 0).collect();
        assert_eq!(
            hits,
            [
                "std::fs",
                "std::net::Ipv6Addr",
                "tracing::warn",
                "std::time::Instant::now"
            ]
        );
    }

    #[test]
    fn finds_ignore_attributes_in_macro_bodies_and_cfg_attr() {
        let file = syn::parse_file(
            "//! x\n#[test]\n#[ignore]\nfn a() {}\n\
             proptest::proptest! { #[test] #[cfg_attr(miri, ignore)] fn b(x in 0..1u8) {} }\n\
             #[doc = \"#[ignore]\"]\nfn c() {}\n",
        )
        .unwrap();
        let mut lines = Vec::new();
        ignore_attributes(file.to_token_stream(), &mut lines);
        assert_eq!(lines, [3, 5]);
    }

    #[test]
    fn globs_and_braces_match_within_segments() {
        assert_eq!(
            expand_braces("xtask/src/bench/{dhcpv6,tftp}.rs"),
            ["xtask/src/bench/dhcpv6.rs", "xtask/src/bench/tftp.rs"]
        );
        assert!(glob_matches("src/cli/<command>.rs", "src/cli/rom.rs"));
        assert!(glob_matches(
            "ipxe-config/local/*.h",
            "ipxe-config/local/general.h"
        ));
        assert!(!glob_matches("src/cli/*.rs", "src/cli/sub/rom.rs"));
    }
}

//! Golden files: the built-in installer templates rendered for the example config's hosts
//! (`node1`, `cx3-node`: Anaconda; `deb-node`: the Debian installer). Set `UPDATE_GOLDEN=1`
//! to rewrite them after an intended template change, then review the diff.

use std::path::Path;

use sixboot::config::Config;
use sixboot::installer::Catalog;

fn check_golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    assert_eq!(
        actual,
        expected,
        "{} differs from the rendering; if intended, rerun with UPDATE_GOLDEN=1",
        path.display()
    );
}

fn example() -> (Config, Catalog) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/lab.toml");
    let config = Config::load(&path).unwrap();
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    let templates = Catalog::load(&config).unwrap();
    let report = templates.check_report(&config);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    (config, templates)
}

#[test]
fn example_script_template_renders_as_the_golden_files() {
    let (config, templates) = example();
    for host in &config.hosts {
        let script = templates.script(host).unwrap();
        assert!(sixboot::script::lint(script.as_bytes()).is_empty());
        check_golden(&format!("ipxe-{}.cfg", host.name), &script);
    }
}

#[test]
fn example_kickstart_template_renders_as_the_golden_files() {
    let (config, templates) = example();
    for host in &config.hosts {
        check_golden(
            &format!("ks-{}.cfg", host.name),
            &templates.answer(host).unwrap(),
        );
    }
}

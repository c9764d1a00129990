//! Golden files: the example templates rendered for the example config's hosts.
//! Set `UPDATE_GOLDEN=1` to rewrite them after an intended template change, then
//! review the diff.

use std::path::Path;

use sixboot::config::Config;
use sixboot::script::Templates;

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

fn example() -> (Config, Templates) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/lab.toml");
    let config = Config::load(&path).unwrap();
    let templates = Templates::load(&config).unwrap();
    assert!(templates.check(&config).is_empty());
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
            &templates.kickstart(host).unwrap(),
        );
    }
}

#[test]
fn built_in_templates_match_the_example_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/templates");
    assert_eq!(
        std::fs::read_to_string(dir.join("ipxe.j2")).unwrap(),
        sixboot::script::DEFAULT_SCRIPT_TEMPLATE
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("ks.j2")).unwrap(),
        sixboot::script::DEFAULT_KICKSTART_TEMPLATE
    );
}

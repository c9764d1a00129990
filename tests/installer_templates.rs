//! The built-in installer templates (issue 21): what each family's kernel line must carry
//! for an unattended install over IPv6 only, checked on the rendering for the example
//! config's hosts (the golden files in `tests/golden` hold the whole text), linted by the
//! one script lint (its installer kernel-line rules included), and what the catalog
//! reports through `TemplateReport` (errors stop start-up, warnings are printed).

use std::path::Path;

use sixboot::config::{Config, Host};
use sixboot::installer::Catalog;

fn example() -> (Config, Catalog) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/lab.toml");
    let config = Config::load(&path).unwrap();
    let catalog = Catalog::load(&config).unwrap();
    (config, catalog)
}

/// A config in a temporary directory: `files` (name, text) beside `boot.toml`, which is
/// `[http] base_url = "http://[2001:db8:1::1]"` followed by `rest`.
fn config_with(files: &[(&str, &str)], rest: &str) -> (tempfile::TempDir, Config, Catalog) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let path = dir.path().join("boot.toml");
    std::fs::write(
        &path,
        format!("[http]\nbase_url = \"http://[2001:db8:1::1]\"\n\n{rest}"),
    )
    .unwrap();
    let config = Config::load(&path).unwrap();
    let catalog = Catalog::load(&config).unwrap();
    (dir, config, catalog)
}

fn host<'a>(config: &'a Config, name: &str) -> &'a Host {
    config.hosts.iter().find(|h| h.name == name).unwrap()
}

/// The words of the script's `kernel` line after the image URL.
fn kernel_args(script: &str) -> Vec<String> {
    let line = script
        .lines()
        .find(|l| l.starts_with("kernel "))
        .unwrap_or_else(|| panic!("no kernel line in\n{script}"));
    line.split_whitespace().skip(2).map(str::to_owned).collect()
}

/// No error and no warning of any rule, iPXE's or the installers'.
fn assert_clean(script: &str) {
    let problems = sixboot::script::lint(script.as_bytes());
    assert!(problems.is_empty(), "{problems:?}");
}

#[test]
fn anaconda_kernel_line_configures_ipv6_fetches_the_kickstart_bracketed_and_names_the_nic() {
    let (config, catalog) = example();
    let node = host(&config, "node1");
    assert_eq!(node.installer, "anaconda");
    let script = catalog.script(node).unwrap();
    assert_clean(&script);
    let args = kernel_args(&script);
    for expected in [
        "ip=auto6",
        "BOOTIF=01-52-54-00-12-34-56",
        "inst.ks=http://[2001:db8:1::1]/ks/52-54-00-12-34-56",
        "inst.repo=http://[2001:db8:1::1]/files/repo",
        "initrd=initrd.img",
        "console=ttyS0",
    ] {
        assert!(args.iter().any(|a| a == expected), "{expected} in {args:?}");
    }
    // Exactly one ip=: dracut wants a bootdev= for more, and none of them DHCPv4.
    assert_eq!(args.iter().filter(|a| a.starts_with("ip=")).count(), 1);
}

#[test]
fn anaconda_kickstart_keeps_ipv4_off_and_reports_done_from_post() {
    let (config, catalog) = example();
    let kickstart = catalog.answer(host(&config, "node1")).unwrap();
    assert!(kickstart.contains("--noipv4"), "{kickstart}");
    assert!(kickstart.contains("--ipv6=auto"), "{kickstart}");
    let post = &kickstart[kickstart.find("%post").expect("a %post section")..];
    assert!(
        post.contains("curl -gfsS -X POST http://[2001:db8:1::1]/done/52-54-00-12-34-56"),
        "{post}"
    );
    assert!(sixboot::script::lint_urls(&kickstart).is_empty());
}

#[test]
fn network_legacy_hosts_get_dhcp6_from_a_host_variable() {
    let (mut config, _) = example();
    let node = config.hosts.iter_mut().find(|h| h.name == "node1").unwrap();
    node.vars
        .insert("dracut_ip".into(), toml::Value::from("dhcp6"));
    let catalog = Catalog::load(&config).unwrap();
    let script = catalog.script(host(&config, "node1")).unwrap();
    assert_clean(&script);
    assert!(kernel_args(&script).contains(&"ip=dhcp6".to_owned()));
}

#[test]
fn debian_installer_kernel_line_preseeds_netcfg_for_an_ipv6_only_link() {
    let (config, catalog) = example();
    let node = host(&config, "deb-node");
    assert_eq!(node.installer, "debian-installer");
    let script = catalog.script(node).unwrap();
    assert_clean(&script);
    let line = script.lines().find(|l| l.starts_with("kernel ")).unwrap();
    for expected in [
        "kernel http://[2001:db8:1::1]/files/debian-installer/linux initrd=initrd.gz ",
        " auto=true priority=critical ",
        " url=http://[2001:db8:1::1]/ks/52-54-00-12-34-57 ",
        " netcfg/dhcp_timeout=",
        " netcfg/no_default_route=true ",
        " preseed/early_command=\"sed -i s/-TERM/-KILL/ /bin/kill-all-dhcp; ln -sf /dev/null /var/run/dhcp6c.pid\"",
    ] {
        assert!(line.contains(expected), "{expected:?} in {line}");
    }
    assert!(script.contains("\ninitrd http://[2001:db8:1::1]/files/debian-installer/initrd.gz\n"));
}

#[test]
fn debian_preseed_reports_done_at_the_end_and_uses_the_hosts_mirror() {
    let (config, catalog) = example();
    let preseed = catalog.answer(host(&config, "deb-node")).unwrap();
    assert!(
        preseed.contains(
            "\nd-i preseed/late_command string wget -q -O /dev/null \
             http://[2001:db8:1::1]/done/52-54-00-12-34-57\n"
        ),
        "{preseed}"
    );
    assert!(preseed.contains("\nd-i mirror/http/hostname string [2001:db8:1::1]\n"));
    assert!(preseed.contains("\nd-i mirror/http/directory string /files/debian\n"));
    // debconf-set-selections reads `owner question type value` lines.
    for line in preseed
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        assert!(line.split_whitespace().count() >= 3, "{line}");
    }
}

#[test]
fn a_family_of_your_own_is_rendered_from_its_files() {
    let (_dir, config, catalog) = config_with(
        &[
            (
                "s.j2",
                "#!ipxe\nkernel {{ files_url }}/k autoinstall ds=nocloud-net;s={{ ks_url }}/\nboot\n",
            ),
            ("a.j2", "#cloud-config\n# {{ done_url }}\n"),
        ],
        "[installers.ubuntu]\nscript_template = \"s.j2\"\nanswer_template = \"a.j2\"\n\n\
         [[hosts]]\nmac = \"52:54:00:12:34:56\"\ninstaller = \"ubuntu\"\n\n\
         [[hosts]]\nmac = \"52:54:00:12:34:57\"\n",
    );
    assert!(catalog.check(&config).is_empty());
    assert!(catalog
        .script(&config.hosts[0])
        .unwrap()
        .contains("s=http://[2001:db8:1::1]/ks/52-54-00-12-34-56/"));
    assert_eq!(
        catalog.answer(&config.hosts[0]).unwrap(),
        "#cloud-config\n# http://[2001:db8:1::1]/done/52-54-00-12-34-56\n"
    );
    // The other host has no installer of its own: the default family, built in.
    assert!(catalog
        .script(&config.hosts[1])
        .unwrap()
        .contains(" ip=auto6 "));
}

#[test]
fn a_script_template_with_an_unbracketed_installer_location_is_refused_for_its_host() {
    let (_dir, config, catalog) = config_with(
        &[(
            "s.j2",
            "#!ipxe\nkernel {{ files_url }}/vmlinuz ip=auto6 inst.repo=nfs:{{ address }}:/srv/os\nboot\n",
        )],
        "[installers.anaconda]\nscript_template = \"s.j2\"\n\n[[hosts]]\n\
         mac = \"52:54:00:12:34:56\"\nname = \"node1\"\naddress = \"2001:db8:1::10\"\n",
    );
    let errors: Vec<String> = catalog
        .check(&config)
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("s.j2")
            && errors[0].contains("node1")
            && errors[0].contains("error[kernel-param-host]")
            && errors[0].contains("[2001:db8:1::10]"),
        "{}",
        errors[0]
    );
}

#[test]
fn an_anaconda_line_without_ipv6_is_a_warning_for_every_host_that_gets_it() {
    let (_dir, config, catalog) = config_with(
        &[(
            "s.j2",
            "#!ipxe\nkernel {{ files_url }}/vmlinuz inst.ks={{ ks_url }}\nboot\n",
        )],
        "[installers.anaconda]\nscript_template = \"s.j2\"\n\n\
         [[hosts]]\nmac = \"52:54:00:12:34:56\"\nname = \"node1\"\n\n\
         [[hosts]]\nmac = \"52:54:00:12:34:57\"\nname = \"node2\"\n\n\
         [[hosts]]\nmac = \"52:54:00:12:34:58\"\nname = \"deb\"\n\
         installer = \"debian-installer\"\n",
    );
    let report = catalog.check_report(&config);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    // One warning for the template line, naming both Anaconda hosts; the Debian host's
    // built-in template has no such line.
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    let warning = &report.warnings[0];
    assert_eq!(warning.problem.rule.name, "kernel-anaconda-no-ipv6");
    assert_eq!(warning.hosts, ["node1", "node2"]);
    assert!(warning.template.ends_with("s.j2"), "{}", warning.template);
    assert!(
        warning
            .to_string()
            .contains("warning[kernel-anaconda-no-ipv6]"),
        "{warning}"
    );
    // Served all the same: a warning never stops a script.
    assert!(catalog.script(&config.hosts[0]).is_ok());
}

//! Hands-off installs through a BMC, end to end (issue 15): a real QEMU machine behind
//! sushy-tools' Redfish emulator (libvirt's embedded QEMU driver), HTTPS with the lab's
//! own CA, `sixboot boot-server` on the same link. See `sixboot_lab::redfish`.
//!
//! One machine, one emulator, in this order (each step needs the one before):
//! 1. The machine runs from its disk (the marker on its console).
//! 2. Failure paths against the same emulator, none of which may reset the machine or
//!    leave an install flag on: wrong password (401), unknown system, an unsupported
//!    boot target, a BMC that does not answer (connect timeout), an unknown CA.
//! 3. `sixboot hosts install node1 --reboot --until done`: the emulator shows the
//!    override, the machine restarts, boots from the network through sixboot, runs the
//!    lab's install chain to `/done`; the install flag is off.
//! 4. The next power-on boots from the disk again: the marker a second time, and the
//!    boot server answered its script request with 404 (sushy-tools keeps overrides
//!    Continuous, so the network is tried first; install-once sends it on to the disk).

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use sixboot::mac::Mac;
use sixboot_lab::guest::GuestImages;
use sixboot_lab::lab::uuid_for;
use sixboot_lab::netns::NetEnv;
use sixboot_lab::qemu::{find_our_rom, Firmware, STOCK_ROM};
use sixboot_lab::redfish::{need_emulator, DomainSpec, Emulator, EmulatorOptions, DISK_MARKER};
use sixboot_lab::server::{Site, Sixboot};
use sixboot_lab::{base_url, cache_dir, known_mac, RomFlavor};

const BMC_ADDRESS: &str = "2001:db8:5b::b";
/// On the link, but nothing answers: a permanent neighbour entry with a MAC nobody has,
/// so TCP SYNs vanish and the connect times out.
const DEAD_BMC: &str = "2001:db8:5b::dead";

fn node1() -> Mac {
    "52:54:00:5b:00:15".parse().unwrap()
}

/// Everything the test runs; fields drop in order: the machine and emulator first.
struct BmcLab {
    emulator: Emulator,
    _server: Sixboot,
    net: NetEnv,
    config: PathBuf,
    work: PathBuf,
}

impl BmcLab {
    /// Runs `sixboot ARGS --config …` inside the lab's namespace.
    fn sixboot(&self, args: &[&str]) -> Output {
        let output = self
            .net
            .command(env!("CARGO_BIN_EXE_sixboot"))
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .output()
            .expect("sixboot runs");
        eprintln!(
            "$ sixboot {}\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    fn host(&self, name: &str) -> serde_json::Value {
        let out = self.sixboot(&["hosts", "list", "--json"]);
        assert!(out.status.success());
        let hosts: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        hosts
            .into_iter()
            .find(|h| h["name"] == name)
            .unwrap_or_else(|| panic!("{name} is in the inventory"))
    }

    fn status(&self) -> serde_json::Value {
        let out = self.sixboot(&["bmc", "status", "node1", "--json"]);
        assert!(out.status.success(), "bmc status works");
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn explain(&self) -> String {
        let tail = |text: String, n: usize| {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        };
        format!(
            "--- console ---\n{}\n--- emulator ---\n{}\n--- boot server ---\n{}\nfiles: {}",
            tail(self.emulator.console_text(), 40),
            tail(self.emulator.log_text(), 20),
            tail(
                std::fs::read_to_string(self.work.join("sixboot/boot-server.log"))
                    .unwrap_or_default(),
                30
            ),
            self.work.display()
        )
    }
}

/// A failed `hosts install --reboot`: exit 1, every `needles` in stderr, no password
/// in it, and the install flag still off.
fn assert_refused(lab: &BmcLab, name: &str, needles: &[&str]) {
    let out = lab.sixboot(&["hosts", "install", name, "--reboot", "--wait", "30"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{name}: must fail");
    for needle in needles {
        assert!(stderr.contains(needle), "{name}: `{needle}` in:\n{stderr}");
    }
    assert!(
        stderr.contains("install flag put back to off"),
        "{name}: {stderr}"
    );
    for secret in ["lab-bmc-secret", "not-the-password"] {
        assert!(
            !stderr.contains(secret),
            "{name}: a password leaked: {stderr}"
        );
    }
    assert_eq!(lab.host(name)["install"], false, "{name}: flag as before");
}

/// The password, and the basic-auth token made from it, appear nowhere a user or another
/// process could read them: no command line on the machine (`/proc/*/cmdline`), not the
/// boot server's log, the emulator's log, the inventory file, or `extra` (CLI output).
fn assert_no_secret_anywhere(lab: &BmcLab, extra: &str) {
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode("admin:lab-bmc-secret");
    let mut places: Vec<(String, String)> = vec![("CLI output".into(), extra.to_owned())];
    for file in [
        "sixboot/boot-server.log",
        "bmc/emulator.log",
        "sixboot/state/hosts.json",
        "sixboot/boot.toml",
    ] {
        let path = lab.work.join(file);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        places.push((path.display().to_string(), text));
    }
    let mut n_processes = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            n_processes += 1;
            places.push((
                format!("the command line of process {:?}", entry.file_name()),
                String::from_utf8_lossy(&cmdline).replace('\0', " "),
            ));
        }
    }
    assert!(n_processes > 3, "/proc lists the processes");
    for (place, text) in places {
        for secret in ["lab-bmc-secret", token.as_str()] {
            assert!(!text.contains(secret), "the BMC password is in {place}");
        }
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn hosts_install_reboot_netboots_the_machine_once_through_its_bmc_and_bmc_failures_change_nothing()
{
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let cache = cache_dir(&root);
    if !need_emulator(&cache) {
        return;
    }
    let started = Instant::now();
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("redfish-e2e");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let rom = find_our_rom(&root, Firmware::Bios).unwrap_or_else(|| {
        eprintln!("no sixboot ROM built (cargo xtask build-rom); using Debian's {STOCK_ROM}");
        PathBuf::from(STOCK_ROM)
    });

    // The lab CA: the emulator's certificate names its address.
    let certified = rcgen::generate_simple_self_signed(vec![BMC_ADDRESS.to_owned()]).unwrap();
    let (cert, key, ca) = (
        work.join("bmc.pem"),
        work.join("bmc.key"),
        work.join("ca.pem"),
    );
    write(&cert, &certified.cert.pem());
    write(&key, &certified.key_pair.serialize_pem());
    write(&ca, &certified.cert.pem());
    let password = work.join("bmc-password");
    write(&password, "lab-bmc-secret\n");
    let wrong = work.join("wrong-password");
    write(&wrong, "not-the-password\n");

    let net = NetEnv::create("rfe").unwrap_or_else(|e| panic!("lab link: {e}"));
    let images = GuestImages::prepare(&cache, &work.join("guest")).unwrap();
    let site = Site::write(&work.join("site"), &images, &known_mac(), RomFlavor::Ipxe).unwrap();
    let server = Sixboot::start(&net, &work, &site, Path::new(env!("CARGO_BIN_EXE_sixboot")))
        .unwrap_or_else(|e| panic!("boot server: {e}"));
    let emulator = Emulator::start(
        &net,
        &work,
        &DomainSpec {
            name: "node1".into(),
            uuid: uuid_for(&node1()),
            mac: node1(),
            rom: rom.clone(),
            memory_mb: 384,
        },
        &EmulatorOptions {
            address: BMC_ADDRESS.parse().unwrap(),
            username: "admin".into(),
            password_file: password.clone(),
            tls: Some((cert, key)),
            cache: cache.clone(),
        },
    )
    .unwrap_or_else(|e| panic!("Redfish emulator: {e}"));
    let lab = BmcLab {
        emulator,
        _server: server,
        config: work.join("sixboot/boot.toml"),
        work: work.clone(),
        net,
    };
    eprintln!(
        "BMC {} up after {:.1} s; ROM {}",
        lab.emulator.url,
        started.elapsed().as_secs_f64(),
        rom.display()
    );
    let neigh = std::process::Command::new("ip")
        .args(["-n", &lab.net.namespace, "-6", "neigh", "add", DEAD_BMC])
        .args([
            "lladdr",
            "02:00:5b:00:de:ad",
            "dev",
            &lab.net.bridge,
            "nud",
            "permanent",
        ])
        .status()
        .unwrap();
    assert!(neigh.success(), "a neighbour entry for the dead BMC");

    // The hosts: node1 and one per failure, each with its BMC in the inventory store.
    let url = lab.emulator.url.clone();
    let ca_s = ca.display().to_string();
    let (pw, bad) = (password.display().to_string(), wrong.display().to_string());
    let add = |mac: &str, name: &str, extra: &[&str]| {
        let mut args = vec![
            "hosts",
            "add",
            mac,
            "--name",
            name,
            "--bmc-username",
            "admin",
        ];
        args.extend_from_slice(extra);
        let out = lab.sixboot(&args);
        assert!(out.status.success(), "hosts add {name}");
    };
    let node1_mac = node1().to_string();
    add(
        &node1_mac,
        "node1",
        &[
            "--bmc-url",
            &url,
            "--bmc-password-file",
            &pw,
            "--bmc-ca-file",
            &ca_s,
        ],
    );
    add(
        "52:54:00:5b:00:21",
        "node-badpw",
        &[
            "--bmc-url",
            &url,
            "--bmc-password-file",
            &bad,
            "--bmc-ca-file",
            &ca_s,
        ],
    );
    add(
        "52:54:00:5b:00:22",
        "node-nosys",
        &[
            "--bmc-url",
            &url,
            "--bmc-password-file",
            &pw,
            "--bmc-ca-file",
            &ca_s,
            "--bmc-system",
            "no-such-node",
        ],
    );
    add(
        "52:54:00:5b:00:23",
        "node-uefi",
        &[
            "--bmc-url",
            &url,
            "--bmc-password-file",
            &pw,
            "--bmc-ca-file",
            &ca_s,
            "--bmc-boot",
            "uefi-http",
        ],
    );
    let dead = format!("https://[{DEAD_BMC}]:8000");
    add(
        "52:54:00:5b:00:24",
        "node-down",
        &[
            "--bmc-url",
            &dead,
            "--bmc-password-file",
            &pw,
            "--bmc-ca-file",
            &ca_s,
            "--bmc-timeout",
            "2",
        ],
    );
    add(
        "52:54:00:5b:00:25",
        "node-tls",
        &["--bmc-url", &url, "--bmc-password-file", &pw],
    );
    let hosts_json = work.join("sixboot/state/hosts.json");
    let stored = std::fs::read_to_string(&hosts_json).unwrap();
    assert!(
        stored.contains("password_file"),
        "the BMC is stored: {stored}"
    );
    assert!(
        !stored.contains("lab-bmc-secret"),
        "never the password itself"
    );

    // 1. Running from its disk.
    lab.emulator
        .wait_console(DISK_MARKER, 1, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.explain()));
    let before = lab.status();
    assert_eq!(before["power_state"], "On");
    assert_eq!(before["boot_override_target"], "Hdd");
    assert_eq!(before["name"], "node1");
    let table = lab.sixboot(&["bmc", "status", "node1"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("targets        Pxe, Cd, Hdd"), "{table}");

    // 2. Failures change nothing.
    let failures = Instant::now();
    assert_refused(
        &lab,
        "node-badpw",
        &[
            &format!("BMC {url}"),
            "list the systems (GET /redfish/v1/Systems)",
            "HTTP 401 Unauthorized: Incorrect username or password; check username and password_file",
        ],
    );
    assert_refused(
        &lab,
        "node-nosys",
        &[
            "find the system",
            "no ComputerSystem `no-such-node`",
            "(node1)",
        ],
    );
    assert_refused(
        &lab,
        "node-uefi",
        &[
            "set the boot override (PATCH /redfish/v1/Systems/",
            "boot override target UefiHttp is not supported; the BMC supports: Pxe, Cd, Hdd",
        ],
    );
    assert_refused(
        &lab,
        "node-down",
        &[&format!("BMC {dead}"), "no answer within 2 s (connect)"],
    );
    assert_refused(&lab, "node-tls", &["TLS", "UnknownIssuer"]);
    // The API's equivalent: 502 with the BMC's error, the flag left off.
    let token = work.join("api-token");
    let out = lab.sixboot(&[
        "api",
        "token",
        "create",
        "--name",
        "e2e",
        "--output",
        &token.display().to_string(),
    ]);
    assert!(out.status.success(), "api token create");
    let bearer = format!(
        "Authorization: Bearer {}",
        std::fs::read_to_string(&token).unwrap().trim()
    );
    let api = lab
        .net
        .command("curl")
        .args([
            "-sS",
            "-g",
            "-X",
            "POST",
            "-w",
            "\\n%{http_code}",
            "-H",
            &bearer,
        ])
        .arg(format!(
            "{}/api/v1/hosts/52:54:00:5b:00:21/install?reboot=1",
            base_url()
        ))
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&api.stdout);
    eprintln!("POST …/install?reboot=1 (node-badpw):\n{answer}");
    assert!(answer.ends_with("\n502"), "{answer}");
    assert!(answer.contains("HTTP 401 Unauthorized"), "{answer}");
    assert!(!answer.contains("not-the-password"), "{answer}");
    assert_eq!(
        lab.host("node-badpw")["install"],
        false,
        "API: flag as before"
    );
    eprintln!("failure paths: {:.1} s", failures.elapsed().as_secs_f64());
    let after = lab.status();
    assert_eq!(after["boot_override_target"], "Hdd", "no override was set");
    assert_eq!(
        lab.emulator.console_text().matches(DISK_MARKER).count(),
        1,
        "no failure may reset the machine\n{}",
        lab.explain()
    );

    // 3. The hands-off install.
    let install = Instant::now();
    let out = lab.sixboot(&[
        "hosts", "install", "node1", "--reboot", "--until", "done", "--wait", "240",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "install --reboot:\n{}", lab.explain());
    for needle in [
        "node1 (52:54:00:5b:00:15) will install on its next boot",
        "system node1 (/redfish/v1/Systems/5b5b0000-0000-4000-8000-5254005b0015): power On, \
         boot override Continuous Hdd",
        "boot override set: Once Pxe (the BMC now reports Continuous Pxe)",
        "ComputerSystem.Reset ForceRestart accepted",
        "reached done",
    ] {
        assert!(stdout.contains(needle), "`{needle}` in:\n{stdout}");
    }
    eprintln!("install: {:.1} s", install.elapsed().as_secs_f64());
    // While the emulator, the machine and the boot server all run.
    assert_no_secret_anywhere(
        &lab,
        &format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)),
    );
    let console = lab.emulator.console_text();
    for needle in ["SIXBOOT-E2E-SCRIPT", "SIXBOOT-E2E-KS", "SIXBOOT-E2E-DONE"] {
        assert!(console.contains(needle), "{needle}:\n{}", lab.explain());
    }
    assert_eq!(lab.host("node1")["install"], false, "/done turned it off");
    let shown = lab.status();
    assert_eq!(
        shown["boot_override_target"], "Pxe",
        "the emulator shows it"
    );

    // 4. The next power-on boots from the disk.
    let again = Instant::now();
    // The lab's installer powers the machine off after /done.
    lab.emulator
        .wait_console("reboot: Power down", 1, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.explain()));
    let deadline = Instant::now() + Duration::from_secs(20);
    while lab.status()["power_state"] != "Off" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300));
    }
    let out = lab.sixboot(&["bmc", "power", "on", "node1"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("ComputerSystem.Reset On accepted"));
    lab.emulator
        .wait_console(DISK_MARKER, 2, Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("{e}\n{}", lab.explain()));
    let tail = console.len();
    let second = lab.emulator.console_text();
    assert!(
        !second[tail.min(second.len())..].contains("SIXBOOT-E2E-SCRIPT"),
        "after /done no script:\n{}",
        lab.explain()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while lab.host("node1")["stage"] != "local-disk" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        lab.host("node1")["stage"],
        "local-disk",
        "the boot server answered 404 and saw it go to disk\n{}",
        lab.explain()
    );
    eprintln!(
        "second boot to disk: {:.1} s; whole test {:.1} s",
        again.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

//! End to end over HTTPS (issue 20): our BIOS ROM, built with `build-rom --trust CA` for
//! a CA this test makes, fetches its script and the kernel from `sixboot boot-server` at
//! `https://[2001:db8:5b::1]/`; a server certificate from another CA is refused by iPXE.
//!
//! The script stops at the kernel (`kernel` then `poweroff`): booting Linux proves
//! nothing more about TLS and costs tens of seconds under TCG. The CAs live in the
//! target directory, so the ROM comes from build-rom's cache after the first run.
//! The ROM is built by the workspace's `xtask` binary (`cargo xtask …` builds it).
//!
//! `SIXBOOT_HTTPS_E2E_STOCK_SNI=1` builds the ROM with `--no-patch tls-no-literal-sni`:
//! it then sends `[2001:db8:5b::1]` as its TLS server_name, as stock iPXE does, which is
//! what the server must accept (a separate build tree: minutes the first time).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sixboot_lab::guest::GuestImages;
use sixboot_lab::lab::uuid_for;
use sixboot_lab::netns::NetEnv;
use sixboot_lab::qemu::{need_vm, Firmware, Nic, Vm, VmSpec};
use sixboot_lab::server::{listening, sixboot_config, wait_for, Site, SixbootExtra};
use sixboot_lab::timeline::clean;
use sixboot_lab::{base_url, cache_dir, known_mac, need, RomFlavor, SERVER_ADDRESS};

/// The script the server renders: marks the script, fetches the kernel, marks that, and
/// powers off (the test stops the VM at the second mark; the wait lets the serial port
/// drain, since QEMU exits before the last bytes of an `echo` right before `poweroff`).
const SCRIPT_TEMPLATE: &str = "#!ipxe\n\
    echo SIXBOOT-HTTPS-SCRIPT\n\
    kernel {{ files_url }}/vmlinuz\n\
    echo SIXBOOT-HTTPS-KERNEL loaded\n\
    sleep 5\n\
    poweroff\n";

/// One CA: certificate and key (PEM), kept under `dir/name.{crt,key}` across runs.
struct Ca {
    name: String,
    cert_pem: String,
    key_pem: String,
    path: PathBuf,
}

impl Ca {
    fn load_or_make(dir: &Path, name: &str) -> Ca {
        let (crt, key) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        if let (Ok(cert_pem), Ok(key_pem)) =
            (std::fs::read_to_string(&crt), std::fs::read_to_string(&key))
        {
            return Ca {
                name: name.to_owned(),
                cert_pem,
                key_pem,
                path: crt,
            };
        }
        let key_pair = rcgen::KeyPair::generate().unwrap();
        let cert = Self::params(name).self_signed(&key_pair).unwrap();
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(&crt, cert.pem()).unwrap();
        std::fs::write(&key, key_pair.serialize_pem()).unwrap();
        Ca {
            name: name.to_owned(),
            cert_pem: cert.pem(),
            key_pem: key_pair.serialize_pem(),
            path: crt,
        }
    }

    fn params(name: &str) -> rcgen::CertificateParams {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("sixboot {name}"));
        params
    }

    /// A server certificate for the lab's address, written as `dir/chain.pem` (leaf,
    /// then this CA: iPXE knows only the CA's fingerprint) and `dir/server.key`.
    fn issue_server_certificate(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let ca_key = rcgen::KeyPair::from_pem(&self.key_pem).unwrap();
        // Same subject and key as the stored CA: what a leaf's issuer name and key
        // identifier are made of (the stored certificate's own bytes are not needed).
        let issuer = Self::params(&self.name).self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![SERVER_ADDRESS.to_string()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "sixboot lab boot server");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let leaf = params.signed_by(&key, &issuer, &ca_key).unwrap();
        let (chain, key_path) = (dir.join("chain.pem"), dir.join("server.key"));
        std::fs::write(&chain, format!("{}{}", leaf.pem(), self.cert_pem)).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (chain, key_path)
    }
}

/// Builds (or takes from build-rom's cache) the QEMU ROM trusting `ca`; returns the
/// legacy `1af41000.rom` and the wall time.
fn build_rom(root: &Path, ca: &Path, out: &Path) -> (PathBuf, Duration) {
    let xtask = PathBuf::from(env!("CARGO_BIN_EXE_sixboot")).with_file_name("xtask");
    assert!(
        xtask.exists(),
        "{} is missing: run the tests through `cargo xtask test` (or `cargo build -p xtask`)",
        xtask.display()
    );
    let started = Instant::now();
    let mut command = Command::new(&xtask);
    command
        .current_dir(root)
        .args(["build-rom", "--no-install", "--target", "qemu", "--trust"])
        .arg(ca)
        .arg("--out")
        .arg(out);
    if std::env::var_os("SIXBOOT_HTTPS_E2E_STOCK_SNI").is_some() {
        command.args(["--no-patch", "tls-no-literal-sni"]);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "build-rom --trust failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rom = find_file(out, "1af41000.rom")
        .unwrap_or_else(|| panic!("build-rom wrote no 1af41000.rom under {}", out.display()));
    (rom, started.elapsed())
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}

/// `sixboot boot-server` on the lab's link with the lab's config, switched to HTTPS:
/// script URL and base URL `https://[…]/`, `tls_listen` on port 443 only.
struct HttpsServer {
    child: Child,
    log: PathBuf,
}

impl HttpsServer {
    fn start(net: &NetEnv, dir: &Path, site: &Site, chain: &Path, key: &Path) -> HttpsServer {
        std::fs::create_dir_all(dir.join("state")).unwrap();
        std::fs::write(dir.join("ipxe.j2"), SCRIPT_TEMPLATE).unwrap();
        std::fs::write(dir.join("ks.j2"), "# unused\n").unwrap();
        let http = base_url();
        let https = http.replacen("http://", "https://", 1);
        let config = sixboot_config(&net.bridge, dir, site, &SixbootExtra::default())
            .replace(&format!("\"{http}"), &format!("\"{https}"))
            .replace(
                &format!("listen = [\"[{SERVER_ADDRESS}]:80\"]"),
                &format!(
                    "listen = []\ntls_listen = [\"[{SERVER_ADDRESS}]:443\"]\n\
                     tls_cert = \"{}\"\ntls_key = \"{}\"",
                    chain.display(),
                    key.display()
                ),
            );
        assert!(
            config.contains("tls_listen") && !config.contains("\"http://"),
            "{config}"
        );
        let config_path = dir.join("boot.toml");
        std::fs::write(&config_path, config).unwrap();
        let log = dir.join("boot-server.log");
        let child = net
            .command(env!("CARGO_BIN_EXE_sixboot"))
            .arg("boot-server")
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", "info,sixboot=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut server = HttpsServer { child, log };
        wait_for(Duration::from_secs(10), "sixboot to listen on 443", || {
            listening(net, 443) || matches!(server.child.try_wait(), Ok(Some(_)))
        })
        .unwrap();
        assert!(
            server.child.try_wait().unwrap().is_none(),
            "boot-server exited:\n{}",
            server.log_text()
        );
        server
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Boots the VM and watches its console until `done` holds for the cleaned console
/// text, QEMU exits, or `limit`; returns the cleaned console and the time.
fn boot_until(
    net: &NetEnv,
    rom: &Path,
    work: &Path,
    label: &str,
    limit: Duration,
    done: impl Fn(&str) -> bool,
) -> (String, Duration) {
    let mac = known_mac();
    let spec = VmSpec {
        firmware: Firmware::Bios,
        nic: Nic::Rom(rom.to_path_buf()),
        mac,
        uuid: uuid_for(&mac),
        memory_mb: 256,
    };
    let mut vm = Vm::start(net, &spec, work, label).unwrap();
    let console = |vm: &Vm| console_lines(&std::fs::read(&vm.serial).unwrap_or_default());
    loop {
        let elapsed = vm.started.elapsed();
        let exited = vm.exited().is_some();
        // Read after the exit check, so that a guest that powered off is read whole.
        let text = console(&vm);
        if done(&text) || exited || elapsed > limit {
            vm.kill();
            return (text, elapsed);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The serial console as lines without escapes, carriage returns or blank lines.
fn console_lines(bytes: &[u8]) -> String {
    bytes
        .split(|&b| b == b'\n')
        .map(|line| clean(line).trim_end().to_owned())
        .filter(|line| !line.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn our_rom_trusting_the_test_ca_gets_script_and_kernel_over_https_and_refuses_another_ca() {
    // Vm::start takes the lab's VM lock (one TCG VM at a time on this machine).
    if !need_vm(Firmware::Bios) {
        return;
    }
    // The ROM is built with --trust for this test's CA, from the iPXE source.
    if need::source("IPXE_SRC").is_none() {
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let keep = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("https-e2e");
    let work = keep.join("run");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let trusted = Ca::load_or_make(&keep, "trusted-ca");
    let other = Ca::load_or_make(&keep, "other-ca");
    let out = match std::env::var_os("SIXBOOT_HTTPS_E2E_STOCK_SNI") {
        Some(_) => keep.join("dist-stock-sni"),
        None => keep.join("dist"),
    };
    let (rom, build_time) = build_rom(&root, &trusted.path, &out);
    eprintln!("build-rom --trust: {:.1} s", build_time.as_secs_f64());

    let net = NetEnv::create("https").unwrap_or_else(|err| panic!("cannot set up the lab: {err}"));
    let images = GuestImages::prepare(&cache_dir(&root), &work.join("guest")).unwrap();
    let site = Site::write(&work.join("site"), &images, &known_mac(), RomFlavor::Ipxe).unwrap();
    let script_url = format!(
        "{}/ipxe/ipxe-{}.cfg",
        base_url().replacen("http://", "https://", 1),
        known_mac()
    );

    // The trusted CA's certificate: the script, then the kernel, over HTTPS.
    let (chain, key) = trusted.issue_server_certificate(&work);
    let server = HttpsServer::start(&net, &work.join("good"), &site, &chain, &key);
    let (console, took) = boot_until(&net, &rom, &work, "trusted", Duration::from_secs(60), |c| {
        c.contains("SIXBOOT-HTTPS-KERNEL loaded")
    });
    let log = server.log_text();
    drop(server);
    eprintln!(
        "trusted CA: {:.1} s from power-on\n{console}",
        took.as_secs_f64()
    );
    std::fs::write(keep.join("console-trusted.txt"), &console).unwrap();
    assert!(
        console.contains(&format!("{script_url}... ok")),
        "the script should come over HTTPS:\n{console}\n{log}"
    );
    assert!(console.contains("SIXBOOT-HTTPS-SCRIPT"), "{console}");
    let kernel = format!(
        "{}/files/vmlinuz...",
        base_url().replacen("http://", "https://", 1)
    );
    assert!(
        console
            .lines()
            .any(|l| l.starts_with(&kernel) && l.ends_with(" ok")),
        "the kernel should come over HTTPS:\n{console}\n{log}"
    );
    assert!(console.contains("SIXBOOT-HTTPS-KERNEL loaded"), "{console}");
    assert!(log.contains("script served"), "{log}");
    assert!(
        log.lines().any(|l| l.contains("file served")
            && l.contains("path=vmlinuz")
            && l.contains("status=200")),
        "{log}"
    );

    // Another CA's certificate: iPXE cannot validate the chain (it even looks for a
    // cross-signing certificate, "XCRT", which cannot help a ROM built with --trust),
    // aborts the handshake, and the embedded script gives up on the script URL.
    let (chain, key) = other.issue_server_certificate(&work);
    let server = HttpsServer::start(&net, &work.join("bad"), &site, &chain, &key);
    let (console, took) = boot_until(
        &net,
        &rom,
        &work,
        "untrusted",
        Duration::from_secs(60),
        |c| c.contains("sixboot: could not boot"),
    );
    let log = server.log_text();
    drop(server);
    eprintln!(
        "other CA: {:.1} s from power-on\n{console}",
        took.as_secs_f64()
    );
    std::fs::write(keep.join("console-untrusted.txt"), &console).unwrap();
    let attempt = console
        .find(&format!("{script_url}..."))
        .unwrap_or_else(|| panic!("iPXE never tried the script URL:\n{console}"));
    let gave_up = console
        .find("sixboot: could not boot")
        .unwrap_or_else(|| panic!("the script URL should fail:\n{console}"));
    let refusal = &console[attempt..gave_up];
    assert!(
        refusal.contains("XCRT") && refusal.contains("(https://ipxe.org/"),
        "iPXE should fail to validate a certificate from another CA:\n{console}"
    );
    assert!(!console.contains("SIXBOOT-HTTPS-SCRIPT"), "{console}");
    assert!(!log.contains("script served"), "{log}");
}

//! UEFI firmware's own network boot over IPv6, against `sixboot boot-server` (issues 8 and
//! 11): OVMF (Debian `ovmf`, QEMU TCG) with a NIC that carries no option ROM, so the
//! firmware's own PXEv6 and HTTPv6 entries run, on the lab's namespace (`sixboot_lab`).
//!
//! 1. PXEv6 with `[boot] bootfile_params` set (which edk2 would read as an NBP size) gets
//!    `tftp://[…]/ipxe.efi` without option 60, downloads it exactly once, and that iPXE,
//!    built by `cargo xtask build-rom --embed` with a script that sets its own user class
//!    ("sixboot-lab", not "iPXE"), is still recognised as iPXE and gets its script: no
//!    chainload loop.
//! 2. PXEv6 for an architecture with no configured file (x86-64 here; only ARM64 has a PXE
//!    file) gets no option 59 and gives up; OVMF moves on to HTTPv6, which gets
//!    `[boot.http] x86_64` plus the "HTTPClient" vendor class, loads iPXE over HTTP, and
//!    iPXE gets its script.
//!
//! The `ipxe.efi` is ours (built once per run from `IPXE_SRC`: no 15 s DHCPv4 wait); test 1
//! needs it and skips without `IPXE_SRC`, test 2 falls back to Debian's `ipxe.efi`. Each
//! boot takes about 40 s under TCG; one VM at a time (`sixboot_lab::lock::vm_lock`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sixboot_lab::netns::NetEnv;
use sixboot_lab::qemu::{need_vm, Firmware, Nic, Vm, VmSpec};
use sixboot_lab::server::{Site, Sixboot, SixbootExtra};
use sixboot_lab::timeline::{format_table, Stage};
use sixboot_lab::{known_mac, lab::uuid_for, need, nested_cargo, watch, BootRun, SERVER_ADDRESS};

/// What the per-host script prints: the end of every boot here.
const MARKER: &str = "SIXBOOT-OVMF-SCRIPT";
/// The user class the embedded script sets (several public iPXE builds set their own).
const USER_CLASS: &str = "sixboot-lab";
/// Debian's `ipxe.efi` (package `ipxe`), when ours cannot be built.
const DEBIAN_IPXE_EFI: &str = "/usr/lib/ipxe/ipxe.efi";
const HOST: &str = "ovmf-node";

/// The script embedded in our `ipxe.efi`: sixboot's default chain, with a user class of
/// its own.
fn embedded_script() -> String {
    format!(
        "#!ipxe\n\
         # sixboot's OVMF test (issue 11): an iPXE with its own user class must still\n\
         # get its script from the server, not ipxe.efi again.\n\
         set user-class {USER_CLASS}\n\
         echo sixboot: configuring IPv6 (router advertisement, then DHCPv6)\n\
         ifconf -c ipv6 || goto failed\n\
         chain ${{filename}} || goto failed\n\
         exit\n\
         :failed\n\
         echo sixboot: boot failed\n\
         exit 1\n"
    )
}

/// Builds our `ipxe.efi` once per test binary with `cargo xtask build-rom --target qemu
/// --embed SCRIPT --out DIR` (its input cache makes later runs take a fraction of a
/// second). `Err` says what failed.
fn build_our_ipxe_efi(ipxe_src: &Path) -> &'static Result<PathBuf, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ovmf-ipxe");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let script = dir.join("user-class.ipxe");
        std::fs::write(&script, embedded_script())
            .map_err(|e| format!("{}: {e}", script.display()))?;
        let out = dir.join("dist");
        let started = Instant::now();
        let output = nested_cargo(root)
            .args([
                "xtask",
                "build-rom",
                "--target",
                "qemu",
                "--no-install",
                "--embed",
            ])
            .arg(&script)
            .arg("--out")
            .arg(&out)
            .env("IPXE_SRC", ipxe_src)
            .output()
            .map_err(|e| format!("cannot run cargo xtask build-rom: {e}"))?;
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if !output.status.success() {
            return Err(format!("cargo xtask build-rom failed:\n{log}"));
        }
        eprintln!(
            "built ipxe.efi with user class {USER_CLASS} in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        find_file(&out, "ipxe.efi")
            .ok_or_else(|| format!("no ipxe.efi under {}:\n{log}", out.display()))
    })
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if path.file_name().is_some_and(|n| n == name) {
                found.push(path);
            }
        }
    }
    // The QEMU target's copy first, should the output hold several.
    found.sort_by_key(|p| !p.to_string_lossy().contains("qemu"));
    found.into_iter().next()
}

/// One boot: a lab link, `sixboot boot-server` with `boot` in `[boot]` and a TFTP root
/// holding `ipxe_efi`, and a ROM-less OVMF VM booting through `nic`, watched until every
/// stage is seen.
fn boot(tag: &str, ipxe_efi: &Path, boot: &str, nic: Nic, stages: Vec<Stage>) -> BootRun {
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("ovmf-{tag}"));
    let _ = std::fs::remove_dir_all(&work);
    let site = Site {
        root: work.join("site"),
    };
    let tftp = work.join("tftp");
    for dir in [site.root.join("files"), tftp.clone()] {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(ipxe_efi, dir.join("ipxe.efi")).unwrap();
    }
    let net = NetEnv::create(tag).unwrap_or_else(|e| panic!("{e}"));
    let extra = SixbootExtra {
        tftp_root: Some(tftp),
        boot: boot.to_owned(),
        script_template: Some(format!("#!ipxe\necho {MARKER} {{{{ name }}}}\npoweroff\n")),
        host_name: Some(HOST.to_owned()),
    };
    let server = Sixboot::start_with(
        &net,
        &work,
        &site,
        Path::new(env!("CARGO_BIN_EXE_sixboot")),
        &extra,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mac = known_mac();
    let spec = VmSpec {
        firmware: Firmware::Uefi,
        nic,
        mac,
        uuid: uuid_for(&mac),
        memory_mb: 512,
    };
    let mut vm = Vm::start(&net, &spec, &work, "ovmf").unwrap_or_else(|e| panic!("{e}"));
    let run = watch(
        &mut vm,
        &[server.log().to_path_buf()],
        stages,
        Duration::from_secs(240),
        &mut |_| {},
    );
    if !run.timeline.missing().is_empty() {
        panic!("{}", run.explain());
    }
    eprintln!("{tag}:\n{}", format_table(&run.timeline));
    run
}

/// The stages after the firmware handed over to our iPXE: it starts, gets its own
/// lease with the script URL, and runs the script.
fn ipxe_runs_its_script(script_url: &str) -> [Stage; 4] {
    [
        Stage::console("ipxe", &["iPXE initialising devices"]),
        Stage::server(
            "srv:ipxe-lease",
            &["DHCPv6 lease", "client=ipxe", script_url],
        ),
        Stage::server("srv:script", &["script served"]),
        Stage::console("script", &[MARKER, HOST]),
    ]
}

fn lines_with<'a>(log: &'a str, parts: &[&str]) -> Vec<&'a str> {
    log.lines()
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .collect()
}

fn script_url() -> String {
    format!("http://[{SERVER_ADDRESS}]/ipxe/ipxe-{}.cfg", known_mac())
}

#[test]
fn ovmf_pxe_with_bootfile_params_loads_our_ipxe_once_and_that_ipxe_with_its_own_user_class_gets_its_script(
) {
    if !need_vm(Firmware::Uefi) {
        return;
    }
    let Some(ipxe_src) = need::source("IPXE_SRC") else {
        return;
    };
    let ipxe_efi = build_our_ipxe_efi(&ipxe_src)
        .as_ref()
        .unwrap_or_else(|e| panic!("{e}"));
    let tftp_url = format!("tftp://[{SERVER_ADDRESS}]/ipxe.efi");
    let config = format!(
        "efi_url = \"{tftp_url}\"\n\
         # edk2 would read option 60 as the NBP's size and stop (PXE-E53).\n\
         bootfile_params = [\"console=ttyS0\"]\n"
    );
    let script_url = script_url();
    let run = boot(
        "ovpxe",
        ipxe_efi,
        &config,
        Nic::FirmwareOnly {
            pxe6: true,
            http6: false,
        },
        vec![
            Stage::console("pxe", &["Start PXE over IPv6"]),
            Stage::server(
                "srv:pxe-lease",
                &["DHCPv6 lease", "client=uefi-pxe", "arch=Some(7)", &tftp_url],
            ),
            Stage::console("nbp", &["NBP file downloaded successfully"]),
            Stage::server("srv:tftp", &["TFTP transfer complete", "file=ipxe.efi"]).unordered(),
        ]
        .into_iter()
        .chain(ipxe_runs_its_script(&script_url))
        .collect(),
    );
    let size = std::fs::metadata(ipxe_efi).unwrap().len();
    let downloads = lines_with(&run.server_log, &["TFTP transfer complete"]);
    assert_eq!(
        downloads.len(),
        1,
        "exactly one TFTP download (no chainload loop):\n{}",
        run.server_log
    );
    assert!(
        downloads[0].contains("file=ipxe.efi") && downloads[0].contains(&format!("bytes={size}")),
        "{}",
        downloads[0]
    );
    // Its user class is not in ipxe_user_classes: iPXE's own vendor class told.
    let ipxe = lines_with(&run.server_log, &["DHCPv6 lease", "client=ipxe"]);
    assert!(
        ipxe.iter()
            .all(|l| l.contains("rule=\"ipxe-vendor-class\"")),
        "{ipxe:#?}"
    );
    // Firmware never got the script, iPXE never got ipxe.efi.
    for line in lines_with(&run.server_log, &["bootfile_url="]) {
        let (firmware, url) = if line.contains("client=ipxe") {
            ("iPXE", script_url.as_str())
        } else {
            ("UEFI PXE", tftp_url.as_str())
        };
        assert!(line.contains(url), "{firmware} got another file: {line}");
    }
}

#[test]
fn ovmf_pxe_for_an_architecture_without_a_file_gets_none_and_moves_on_to_http_boot() {
    if !need_vm(Firmware::Uefi) {
        return;
    }
    // Ours if it can be built (no 15 s DHCPv4 wait), else Debian's.
    let ipxe_efi = match std::env::var_os("IPXE_SRC").filter(|v| !v.is_empty()) {
        Some(src) => build_our_ipxe_efi(Path::new(&src))
            .as_ref()
            .unwrap_or_else(|e| panic!("{e}"))
            .clone(),
        None => {
            if !need::file(DEBIAN_IPXE_EFI, "ipxe") {
                return;
            }
            eprintln!("IPXE_SRC not set: HTTP Boot loads Debian's {DEBIAN_IPXE_EFI}");
            PathBuf::from(DEBIAN_IPXE_EFI)
        }
    };
    let http_url = format!("http://[{SERVER_ADDRESS}]/files/ipxe.efi");
    let config = format!(
        "[boot.pxe]\n\
         arm64 = \"tftp://[{SERVER_ADDRESS}]/arm64/ipxe.efi\"\n\
         [boot.http]\n\
         x86_64 = \"{http_url}\"\n"
    );
    let script_url = script_url();
    let run = boot(
        "ovhttp",
        &ipxe_efi,
        &config,
        Nic::FirmwareOnly {
            pxe6: true,
            http6: true,
        },
        vec![
            Stage::console("pxe", &["Start PXE over IPv6"]),
            Stage::server(
                "srv:pxe-no-file",
                &[
                    "DHCPv6 answer",
                    "boot=None",
                    "client=uefi-pxe",
                    "arch=Some(7)",
                ],
            ),
            Stage::console("pxe-gave-up", &["failed to load", "UEFI PXEv6"]),
            Stage::console("http", &["Start HTTP Boot over IPv6"]),
            Stage::server(
                "srv:http-lease",
                &[
                    "DHCPv6 lease",
                    "client=uefi-http",
                    "arch=Some(16)",
                    &http_url,
                ],
            ),
            Stage::console("uri", &["URI: ", &http_url]),
            Stage::server("srv:http-file", &["file served", "ipxe.efi"]),
        ]
        .into_iter()
        .chain(ipxe_runs_its_script(&script_url))
        .collect(),
    );
    let pxe = lines_with(&run.server_log, &["client=uefi-pxe"]);
    assert!(!pxe.is_empty());
    for line in &pxe {
        assert!(
            line.contains("boot=None") && !line.contains("bootfile_url="),
            "x86-64 UEFI PXE has no file and must get no option 59: {line}"
        );
    }
    assert!(
        lines_with(&run.server_log, &["TFTP"])
            .iter()
            .all(|l| !l.contains("transfer")),
        "nothing may go over TFTP:\n{}",
        run.server_log
    );
}

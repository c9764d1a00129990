//! The status page in a real browser: headless Chromium (started by the test) loads
//! the page of a server holding 100,000 hosts, filters to one host, opens its timeline,
//! and the DOM is checked (rows, the script's live update, no script errors); a
//! screenshot is kept in `target/tmp/observe/`.

mod http_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use http_support::{get, Server};
use sixboot::http::App;
use sixboot::inventory::live::{now_millis, seed_of};
use sixboot::inventory::{apply_all_or_none, Change, HostSpec, Observation, Stage};
use sixboot::mac::Mac;
use sixboot_lab::need;

const N_HOSTS: u32 = 100_000;
/// The host the test follows: number 42,017.
const TARGET: u32 = 42_017;

fn mac_of(i: u32) -> Mac {
    Mac([2, 0x5b, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8])
}

fn name_of(i: u32) -> String {
    format!("rack{:03}-node{i:06}", i / 1000)
}

/// Runs headless Chromium on `url` with `extra` arguments (a fresh profile in
/// `profile`); returns stdout and the console lines it logged.
fn chromium(profile: &Path, url: &str, extra: &[&str]) -> (String, Vec<String>) {
    let out = Command::new("timeout")
        .args([
            "90",
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
        ])
        .args([
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("run chromium");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "chromium {url} failed: {}\n{stderr}",
        out.status
    );
    let console = stderr
        .lines()
        .filter(|l| l.contains("CONSOLE"))
        .map(str::to_owned)
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), console)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_filters_100000_hosts_to_one_and_opens_its_timeline() {
    if !need::program("chromium", "chromium") {
        return;
    }
    let lab = http_support::Lab::new("");
    let config = lab.config();
    std::fs::create_dir_all(&config.state_dir).unwrap();
    let store = sixboot::inventory::store_for(&config).await.unwrap();
    let changes: Vec<Change> = (0..N_HOSTS)
        .map(|i| Change::Create {
            spec: HostSpec {
                mac: mac_of(i),
                name: name_of(i),
                address: None,
                vars: Default::default(),
                installer: None,
                bmc: None,
            },
            // rack042's first hosts are being installed (see below).
            install: (42_000..42_020).contains(&i),
            token: (42_000..42_020).contains(&i).then(|| format!("{i:032x}")),
        })
        .collect();
    apply_all_or_none(&store, seed_of(&config.hosts), &changes, now_millis())
        .await
        .unwrap();
    drop(store);
    let live = Arc::new(sixboot::inventory::open(&config).unwrap());
    // One boot of the target host, as the servers would see it.
    let target = mac_of(TARGET);
    let start = now_millis() - 10_000;
    let stages = [
        (Stage::Rs, None),
        (Stage::Solicit, Some("ipxe x86_64")),
        (Stage::Reply, Some("2001:db8:1::42")),
        (Stage::Script, None),
        (Stage::Kernel, Some("vmlinuz")),
        (Stage::Initrd, Some("initrd.img")),
    ];
    for (i, (stage, detail)) in stages.iter().enumerate() {
        live.observe(Observation {
            mac: target,
            stage: *stage,
            detail: detail.map(str::to_owned),
            at: start + i as u64 * 1500,
            peer: Some("2001:db8:1::42".parse().unwrap()),
        });
    }
    // Its neighbours in the rack at other stages: one stuck (its address came two
    // hours ago), one looping (its script twice in a minute).
    let now = now_millis();
    let neighbours: [(u32, Stage, Option<&str>, u64); 8] = [
        (42_001, Stage::Reply, Some("2001:db8:1::101"), 7_200_000),
        (42_002, Stage::Script, None, 60_000),
        (42_002, Stage::Script, None, 30_000),
        (42_004, Stage::Kickstart, None, 120_000),
        (42_006, Stage::Tftp, Some("ipxe.efi"), 4_000),
        (42_008, Stage::Solicit, Some("uefi-pxe x86_64"), 2_000),
        (42_010, Stage::Kernel, Some("vmlinuz"), 9_000),
        (42_012, Stage::Rs, None, 1_000),
    ];
    for (i, stage, detail, ago) in neighbours {
        live.observe(Observation {
            mac: mac_of(i),
            stage,
            detail: detail.map(str::to_owned),
            at: now - ago,
            peer: None,
        });
    }
    // One batch for the writer: the file backend rewrites hosts.json per commit.
    live.flush().await;
    let app = App::new(&config, live.clone()).unwrap();
    let server = Server::start(Arc::new(app)).await;
    let base = format!("http://[::1]:{}", server.v6.port());
    let n_all = N_HOSTS as usize + config.hosts.len();

    // Every page stays small at 100,000 hosts.
    for path in ["/status", "/status.json", "/status?page=1000"] {
        let reply = get(server.v6, path).await;
        assert_eq!(reply.status, 200, "{path}");
        assert!(
            reply.body.len() < 100 * 1024,
            "{path}: {} bytes",
            reply.body.len()
        );
    }
    let attention: serde_json::Value =
        serde_json::from_slice(&get(server.v6, "/status.json?attention=any").await.body).unwrap();
    assert_eq!(attention["n_matched"], 2, "{attention:#}");
    assert_eq!(attention["rows"][0]["name"], name_of(42_001));
    assert_eq!(attention["rows"][0]["stuck"], true);
    assert_eq!(attention["rows"][1]["looping"], true);
    let first = get(server.v6, "/status").await.text();
    assert!(
        first.contains(&format!("{n_all} of {n_all} hosts")),
        "{}",
        &first[..2000.min(first.len())]
    );

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("observe");
    std::fs::create_dir_all(&dir).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let profile_path = profile.path().to_owned();
    let name = name_of(TARGET);
    let filtered = format!("{base}/status?q={name}");
    let (dom, console) = {
        let (profile, url) = (profile_path.clone(), filtered.clone());
        tokio::task::spawn_blocking(move || {
            chromium(
                &profile,
                &url,
                &["--virtual-time-budget=2500", "--dump-dom"],
            )
        })
        .await
        .unwrap()
    };
    // The script ran: it fetched /status.json and rebuilt the table. (The budget ends
    // before its first 3 s poll: one fetch is enough, and fewer keep a loaded machine
    // from stretching the run.)
    assert!(dom.contains("data-updated=\""), "{dom}");
    assert_eq!(dom.matches("<tr data-mac=").count(), 1, "{dom}");
    let link = format!("<a href=\"/status/host/{target}\">{name}</a>");
    assert!(dom.contains(&link), "{dom}");
    assert!(dom.contains("initrd (initrd.img)"), "{dom}");
    assert!(dom.contains(&format!("1 of {n_all} hosts")), "{dom}");
    assert!(
        !console
            .iter()
            .any(|l| l.contains("Uncaught") || l.contains("Error")),
        "{console:#?}"
    );
    assert!(!dom.contains("data-error"), "{dom}");

    // Its timeline, through the link.
    let timeline_url = format!("{base}/status/host/{target}");
    let (dom, console) = {
        let (profile, url) = (profile_path.clone(), timeline_url.clone());
        tokio::task::spawn_blocking(move || chromium(&profile, &url, &["--dump-dom"]))
            .await
            .unwrap()
    };
    let seen: Vec<&str> = dom
        .split("<tr data-stage=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert_eq!(
        seen,
        ["rs", "solicit", "reply", "script", "kernel", "initrd"],
        "{dom}"
    );
    assert!(dom.contains("<h2>boot 1</h2>"), "{dom}");
    assert!(
        console.iter().all(|l| !l.contains("Uncaught")),
        "{console:#?}"
    );

    // A screenshot for people (README), phone-sized and desktop-sized.
    for (file, size) in [("status.png", "1100,700"), ("status-phone.png", "390,800")] {
        let path = dir.join(file);
        let _ = std::fs::remove_file(&path);
        let (profile, url, shot) = (
            profile_path.clone(),
            format!("{base}/status?q=rack042-node0420"),
            format!("--screenshot={}", path.display()),
        );
        let window = format!("--window-size={size}");
        tokio::task::spawn_blocking(move || {
            chromium(
                &profile,
                &url,
                // The page is whole without its script: no virtual time needed (a
                // screenshot under a time budget hung once on a loaded machine).
                &[&window, &shot, "--hide-scrollbars"],
            )
        })
        .await
        .unwrap();
        let png = std::fs::read(&path).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{}", path.display());
        if std::env::var_os("SIXBOOT_UPDATE_SCREENSHOTS").is_some() {
            let keep = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/screenshots");
            std::fs::create_dir_all(keep).unwrap();
            std::fs::copy(&path, Path::new(keep).join(file)).unwrap();
        }
        eprintln!("screenshot: {}", path.display());
    }
    server.stop().await;
}

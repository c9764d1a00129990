//! SIGHUP reload for `sixboot boot-server`: read the config file and its templates
//! again, check them exactly as `sixboot config check` does, and swap the result in
//! whole, or reject it whole and go on serving the previous one.
//!
//! What is served lives in one [`Generation`]: the validated config (DHCPv6 engine, RA
//! adverts) and the HTTP `App` built from it (hosts, templates, files root, TLS
//! certificate). [`prepare`] builds a new one without touching the running one;
//! [`Live::swap_in`] hands it to the HTTP workers, then to the DHCPv6 and RA threads,
//! through `tokio::sync::watch` channels. Sockets, the lease table and lease log,
//! `/metrics` counters and the persisted host state are never rebuilt: leases and install
//! flags survive a reload. Listeners (and the state directory) are bound once at start;
//! a config that changes them is refused with the fields named, since applying the
//! rest would leave the process half on each config.

use std::path::Path;
use std::sync::Arc;

use sixboot::config::Config;
use sixboot::http::App;
use sixboot::inventory;
use tokio::sync::watch;

/// Everything one config serves with; replaced whole on reload.
pub struct Generation {
    pub config: Arc<Config>,
    pub http: Option<Arc<App>>,
}

/// The running server's side of reload: where a new [`Generation`] goes.
pub struct Serving {
    pub configs: watch::Sender<Arc<Config>>,
    pub apps: Option<watch::Sender<Arc<App>>>,
    /// Opened once at start; reseeded, never reopened.
    pub inventory: Arc<inventory::Live>,
}

impl Serving {
    /// The config being served now.
    pub fn current(&self) -> Arc<Config> {
        self.configs.borrow().clone()
    }

    /// Hands `next` to every part: the inventory first (the only step that can fail,
    /// and then nothing else changed), then HTTP, so a client that gets a DHCPv6
    /// answer from the new config finds its script, then DHCPv6 and RA. Each part
    /// switches atomically (a connection or a batch of datagrams sees one config).
    pub async fn swap_in(&self, next: Generation) -> anyhow::Result<()> {
        self.inventory
            .reseed(inventory::live::seed_of(&next.config.hosts))
            .await
            .map_err(|err| anyhow::anyhow!("cannot update the inventory: {err}"))?;
        if let (Some(apps), Some(app)) = (&self.apps, next.http) {
            apps.send_replace(app);
        }
        self.configs.send_replace(next.config);
        Ok(())
    }
}

/// Builds the HTTP half's state for `config` over the running inventory, or `None`
/// when it has no HTTP listener.
pub fn build_app(config: &Config, inventory: &Arc<inventory::Live>) -> anyhow::Result<Option<App>> {
    if config.http.listen.is_empty() && config.http.tls_listen.is_empty() {
        return Ok(None);
    }
    Ok(Some(App::new(config, inventory.clone())?))
}

/// Reads and checks `path` as `sixboot config check` does and builds everything it
/// serves. `Err` holds the text `config check` prints for the same file (plus a line
/// naming listener changes, which only a restart can apply); nothing running changed.
pub fn prepare(path: &Path, live: &Serving) -> Result<Generation, String> {
    let current = live.current();
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(err) => return Err(format!("{err:#}")),
    };
    let problems = sixboot::http::check(&config);
    if !problems.is_empty() {
        return Err(super::config::http_problems_report(path, &problems));
    }
    let changed = restart_only_changes(&current, &config);
    if !changed.is_empty() {
        return Err(format!(
            "{}: {} changed; these are bound at start, so restart the server to apply them \
             (systemctl restart sixboot)",
            path.display(),
            changed.join(", ")
        ));
    }
    // Warnings do not stop a reload, as they do not stop a start.
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let http = build_app(&config, &live.inventory).map_err(|err| format!("{err:#}"))?;
    let http = match (http, live.apps.as_ref()) {
        (Some(app), Some(apps)) => Some(Arc::new(app.with_metrics_of(&apps.borrow()))),
        (http, _) => http.map(Arc::new),
    };
    Ok(Generation {
        config: Arc::new(config),
        http,
    })
}

/// The settings of `new` that differ from `old` and are only read at start: the
/// sockets (`server.interfaces`, `ra.enabled`, `http.listen`, `http.tls_listen`,
/// `tftp`), `server.state_dir` (the lease log's lock is held for the process's life)
/// and `monitor.metrics` (one set of counters lives as long as the process).
pub fn restart_only_changes(old: &Config, new: &Config) -> Vec<String> {
    let mut changed = Vec::new();
    if old.interfaces != new.interfaces {
        changed.push("server.interfaces");
    }
    if old.state_dir != new.state_dir {
        changed.push("server.state_dir");
    }
    if old.ra.enabled != new.ra.enabled {
        changed.push("ra.enabled");
    }
    if old.http.listen != new.http.listen {
        changed.push("http.listen");
    }
    if old.http.tls_listen != new.http.tls_listen {
        changed.push("http.tls_listen");
    }
    let tftp = |c: &Config| {
        c.tftp.as_ref().map(|t| {
            (
                t.listen.clone(),
                t.root.clone(),
                t.max_block_size,
                t.max_window_size,
                t.timeout,
                t.retries,
                t.max_transfers,
            )
        })
    };
    if tftp(old) != tftp(new) {
        changed.push("[tftp]");
    }
    if old.monitor.metrics != new.monitor.metrics {
        changed.push("monitor.metrics");
    }
    changed.into_iter().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        let text = format!(
            r#"
[server]
interfaces = ["br-boot"]
state_dir = "/tmp/sixboot-reload-test"
[dhcp]
[[dhcp.subnets]]
prefix = "2001:db8:1::/64"
pool_start = "2001:db8:1::100"
pool_end = "2001:db8:1::1ff"
interface = "br-boot"
{extra}
"#
        );
        Config::from_toml(Path::new("t.toml"), &text).expect("valid config")
    }

    #[test]
    fn hosts_and_dhcp_settings_apply_without_a_restart() {
        let old = config("");
        let new = config(
            "[[hosts]]\nmac = \"52:54:00:00:00:01\"\nname = \"n1\"\naddress = \"2001:db8:1::10\"\n",
        );
        assert!(restart_only_changes(&old, &new).is_empty());
    }

    #[test]
    fn listener_changes_are_named() {
        let old = config("[http]\nlisten = [\"[::1]:80\"]\n");
        let new = config("[ra]\nenabled = true\n[http]\nlisten = [\"[::1]:8080\"]\n");
        assert_eq!(
            restart_only_changes(&old, &new),
            ["ra.enabled", "http.listen"]
        );
    }
}

//! Counters for `/metrics` (Prometheus text exposition format 0.0.4) and the
//! `/status` page.
//!
//! Counters are plain atomics in fixed arrays indexed by route and status code, so the
//! hot path never takes a lock or allocates.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use crate::inventory::Stage;

/// Hosts by last stage (indexed as [`Stage::ALL`]) and marked for install.
#[derive(Debug, Clone, Default)]
pub struct HostCounts {
    pub by_stage: [usize; Stage::ALL.len()],
    pub install: usize,
}

impl HostCounts {
    /// Counts the hosts of an inventory.
    pub fn of(inventory: &crate::inventory::Inventory) -> HostCounts {
        let mut counts = HostCounts::default();
        for host in inventory.iter() {
            if let Some(i) = Stage::ALL.iter().position(|s| *s == host.state.stage) {
                counts.by_stage[i] += 1;
            }
            counts.install += usize::from(host.state.install);
        }
        counts
    }
}

/// The routes the server knows, as metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Script,
    Files,
    Kickstart,
    Done,
    Metrics,
    Status,
    Api,
    Other,
}

impl Route {
    const ALL: [Route; 8] = [
        Route::Script,
        Route::Files,
        Route::Kickstart,
        Route::Done,
        Route::Metrics,
        Route::Status,
        Route::Api,
        Route::Other,
    ];

    /// The label value.
    pub fn as_str(&self) -> &'static str {
        match self {
            Route::Script => "script",
            Route::Files => "files",
            Route::Kickstart => "kickstart",
            Route::Done => "done",
            Route::Metrics => "metrics",
            Route::Status => "status",
            Route::Api => "api",
            Route::Other => "other",
        }
    }
}

const CODES: [u16; 16] = [
    200, 206, 304, 400, 403, 404, 405, 408, 411, 413, 416, 431, 500, 501, 503, 0,
];

fn code_index(code: u16) -> usize {
    CODES
        .iter()
        .position(|c| *c == code)
        .unwrap_or(CODES.len() - 1)
}

/// Every counter the HTTP server keeps.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: [[AtomicU64; CODES.len()]; Route::ALL.len()],
    bytes: [AtomicU64; Route::ALL.len()],
    /// File downloads in progress.
    pub active_downloads: AtomicI64,
    /// Open client connections.
    pub active_connections: AtomicI64,
    pub connections_total: AtomicU64,
    /// Connections closed because the request head did not arrive in time.
    pub header_timeouts: AtomicU64,
    /// Connections closed because a client stopped reading a response.
    pub send_timeouts: AtomicU64,
}

impl Metrics {
    /// Counts one answered request and the body bytes sent for it.
    pub fn count(&self, route: Route, code: u16, body_bytes: u64) {
        let r = route as usize;
        self.requests[r][code_index(code)].fetch_add(1, Relaxed);
        self.bytes[r].fetch_add(body_bytes, Relaxed);
    }

    /// The number of requests on a route with a status code, for tests.
    pub fn requests(&self, route: Route, code: u16) -> u64 {
        self.requests[route as usize][code_index(code)].load(Relaxed)
    }

    /// Renders the exposition text; `hosts` gives the hosts-by-state gauges: the
    /// number of hosts at each stage and the number marked for install.
    pub fn render(&self, hosts: &HostCounts, out: &mut String) {
        out.push_str("# HELP sixboot_http_requests_total HTTP requests answered, by route and status code.\n");
        out.push_str("# TYPE sixboot_http_requests_total counter\n");
        for route in Route::ALL {
            for (i, code) in CODES.iter().enumerate() {
                let n = self.requests[route as usize][i].load(Relaxed);
                if n > 0 {
                    let code = if *code == 0 {
                        "other".to_owned()
                    } else {
                        code.to_string()
                    };
                    let _ = writeln!(
                        out,
                        "sixboot_http_requests_total{{route=\"{}\",code=\"{code}\"}} {n}",
                        route.as_str()
                    );
                }
            }
        }
        out.push_str(
            "# HELP sixboot_http_response_bytes_total Response body bytes sent, by route.\n",
        );
        out.push_str("# TYPE sixboot_http_response_bytes_total counter\n");
        for route in Route::ALL {
            let _ = writeln!(
                out,
                "sixboot_http_response_bytes_total{{route=\"{}\"}} {}",
                route.as_str(),
                self.bytes[route as usize].load(Relaxed)
            );
        }
        let gauges: [(&str, &str, &str, i64); 5] = [
            (
                "sixboot_http_active_downloads",
                "gauge",
                "File downloads in progress.",
                self.active_downloads.load(Relaxed),
            ),
            (
                "sixboot_http_active_connections",
                "gauge",
                "Open client connections.",
                self.active_connections.load(Relaxed),
            ),
            (
                "sixboot_http_connections_total",
                "counter",
                "Client connections accepted.",
                self.connections_total.load(Relaxed) as i64,
            ),
            (
                "sixboot_http_header_timeouts_total",
                "counter",
                "Connections closed because the request head was too slow.",
                self.header_timeouts.load(Relaxed) as i64,
            ),
            (
                "sixboot_http_send_timeouts_total",
                "counter",
                "Connections closed because the client stopped reading.",
                self.send_timeouts.load(Relaxed) as i64,
            ),
        ];
        for (name, kind, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        out.push_str("# HELP sixboot_hosts Configured hosts, by last boot stage.\n");
        out.push_str("# TYPE sixboot_hosts gauge\n");
        for (i, stage) in Stage::ALL.iter().enumerate() {
            let n = hosts.by_stage[i];
            let _ = writeln!(out, "sixboot_hosts{{stage=\"{}\"}} {n}", stage.as_str());
        }
        out.push_str("# HELP sixboot_hosts_install Configured hosts marked for installation.\n");
        out.push_str("# TYPE sixboot_hosts_install gauge\n");
        let _ = writeln!(out, "sixboot_hosts_install {}", hosts.install);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_host_gauges() {
        let m = Metrics::default();
        m.count(Route::Script, 200, 120);
        m.count(Route::Script, 404, 10);
        m.count(Route::Files, 299, 0);
        let mut hosts = HostCounts {
            install: 1,
            ..HostCounts::default()
        };
        hosts.by_stage[Stage::ALL.iter().position(|s| *s == Stage::Script).unwrap()] = 1;
        let mut out = String::new();
        m.render(&hosts, &mut out);
        assert!(out.contains("sixboot_http_requests_total{route=\"script\",code=\"200\"} 1\n"));
        assert!(out.contains("sixboot_http_requests_total{route=\"files\",code=\"other\"} 1\n"));
        assert!(out.contains("sixboot_http_response_bytes_total{route=\"script\"} 130\n"));
        assert!(out.contains("sixboot_hosts{stage=\"script\"} 1\n"));
        assert!(out.contains("sixboot_hosts_install 1\n"));
        for line in out.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "bad sample line {line}");
        }
    }
}

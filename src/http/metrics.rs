//! The HTTP server's counters: requests by route and status code, body bytes by
//! route, connections and downloads.
//!
//! Plain atomics in fixed arrays indexed by route and status code, so the hot path
//! never takes a lock or allocates; [`HttpMetrics`] is a prometheus-client
//! [`Collector`] that encodes them on each scrape (see [`crate::metrics`]).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use crate::metrics::{counter, counter_family, gauge};

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
pub struct HttpMetrics {
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
    /// `[monitor] metrics = false`: [`HttpMetrics::count`] counts nothing (the
    /// connection gauges above still count: the server's limits read them).
    pub off: bool,
}

impl HttpMetrics {
    /// All zero; `on` false counts no requests (see [`HttpMetrics::off`]).
    pub fn new(on: bool) -> HttpMetrics {
        HttpMetrics {
            off: !on,
            ..HttpMetrics::default()
        }
    }

    /// Counts one answered request and the body bytes sent for it.
    pub fn count(&self, route: Route, code: u16, body_bytes: u64) {
        if self.off {
            return;
        }
        let r = route as usize;
        self.requests[r][code_index(code)].fetch_add(1, Relaxed);
        self.bytes[r].fetch_add(body_bytes, Relaxed);
    }

    /// The number of requests on a route with a status code, for tests.
    pub fn requests(&self, route: Route, code: u16) -> u64 {
        self.requests[route as usize][code_index(code)].load(Relaxed)
    }
}

impl Collector for HttpMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // Only the route and code pairs seen so far: 8 routes x 16 codes would be
        // mostly zeros.
        let mut requests = Vec::new();
        for route in Route::ALL {
            for (i, code) in CODES.iter().enumerate() {
                let n = self.requests[route as usize][i].load(Relaxed);
                if n > 0 {
                    requests.push(([("route", route.as_str()), ("code", code_label(*code))], n));
                }
            }
        }
        counter_family(
            &mut encoder,
            "sixboot_http_requests",
            "HTTP requests answered, by route and status code.",
            requests,
        )?;
        counter_family(
            &mut encoder,
            "sixboot_http_response_bytes",
            "Response body bytes sent, by route.",
            Route::ALL.iter().map(|route| {
                (
                    [("route", route.as_str())],
                    self.bytes[*route as usize].load(Relaxed),
                )
            }),
        )?;
        gauge(
            &mut encoder,
            "sixboot_http_active_downloads",
            "File downloads in progress.",
            self.active_downloads.load(Relaxed),
        )?;
        gauge(
            &mut encoder,
            "sixboot_http_active_connections",
            "Open client connections.",
            self.active_connections.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "sixboot_http_connections",
            "Client connections accepted.",
            self.connections_total.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "sixboot_http_header_timeouts",
            "Connections closed because the request head was too slow.",
            self.header_timeouts.load(Relaxed),
        )?;
        counter(
            &mut encoder,
            "sixboot_http_send_timeouts",
            "Connections closed because the client stopped reading.",
            self.send_timeouts.load(Relaxed),
        )
    }
}

/// A status code as a label value (`other` for codes outside [`CODES`]).
fn code_label(code: u16) -> &'static str {
    match code {
        200 => "200",
        206 => "206",
        304 => "304",
        400 => "400",
        403 => "403",
        404 => "404",
        405 => "405",
        408 => "408",
        411 => "411",
        413 => "413",
        416 => "416",
        431 => "431",
        500 => "500",
        501 => "501",
        503 => "503",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{HostCounts, Metrics};

    #[test]
    fn metrics_turned_off_count_nothing() {
        let m = Metrics::off();
        assert!(!m.on());
        m.http.count(Route::Script, 200, 120);
        m.ra.sent(crate::metrics::ra::Sent::Periodic);
        m.tftp.ended(None);
        m.dhcpv6.exchange(0.001);
        m.dhcpv6.pool("2001:db8:1::/64", 10, 1, 0);
        assert_eq!(m.http.requests(Route::Script, 200), 0);
        let out = m.render(&HostCounts::default(), None);
        assert!(out.contains("sixboot_ra_advertisements_sent_total{kind=\"periodic\"} 0\n"));
        assert!(out.contains("sixboot_tftp_transfers_total{outcome=\"failed\"} 0\n"));
        assert!(!out.contains("subnet="), "{out}");
        let on = Metrics::new();
        on.ra.sent(crate::metrics::ra::Sent::Periodic);
        let out = on.render(&HostCounts::default(), None);
        assert!(out.contains("sixboot_ra_advertisements_sent_total{kind=\"periodic\"} 1\n"));
    }

    #[test]
    fn renders_counters_and_host_gauges() {
        let m = Metrics::new();
        m.http.count(Route::Script, 200, 120);
        m.http.count(Route::Script, 404, 10);
        m.http.count(Route::Files, 299, 0);
        let mut hosts = HostCounts {
            install: 1,
            ..HostCounts::default()
        };
        hosts.by_stage[crate::inventory::Stage::ALL
            .iter()
            .position(|s| *s == crate::inventory::Stage::Script)
            .unwrap()] = 1;
        let out = m.render(&hosts, None);
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

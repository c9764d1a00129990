//! Prometheus metrics for every service of the boot server (RA, DHCPv6, TFTP, HTTP)
//! and the inventory's hosts, served as text on `GET /metrics`.
//!
//! One [`Metrics`] per process, shared by the DHCPv6 and RA threads, the TFTP
//! listeners and every HTTP worker (and kept across reloads). Counters are
//! prometheus-client's (atomics; label sets are fixed enums, so each family has a
//! bounded number of series); the HTTP hot path keeps plain atomic arrays that a
//! [`Collector`] encodes. Values that are read from the inventory's snapshot (hosts
//! by stage, stuck hosts) are computed per scrape ([`HostCounts`]). The text is the
//! Prometheus text format 0.0.4 written by prometheus-client's encoder, never by
//! hand; names follow the Prometheus naming conventions (base units, `_total` on
//! counters, which the encoder appends).

pub mod dhcpv6;
pub mod ra;
pub mod tftp;

use std::sync::atomic::Ordering::Relaxed;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::http::metrics::HttpMetrics;
use crate::inventory::live::LiveStats;
use crate::inventory::{attention, Inventory, Stage, UnixMillis, Watch};

/// The `Content-Type` of `/metrics`.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Every counter of one boot-server process.
#[derive(Debug)]
pub struct Metrics {
    pub http: std::sync::Arc<HttpMetrics>,
    pub dhcpv6: dhcpv6::Dhcpv6Metrics,
    pub ra: ra::RaMetrics,
    pub tftp: tftp::TftpMetrics,
    registry: Registry,
    on: bool,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every family (all start at zero).
    pub fn new() -> Metrics {
        Metrics::with_counting(true)
    }

    /// Counts nothing (`[monitor] metrics = false`): every recording method returns at
    /// once and `/metrics` answers 404. What `cargo xtask bench` compares against.
    pub fn off() -> Metrics {
        Metrics::with_counting(false)
    }

    /// [`Metrics::new`] or [`Metrics::off`], as `[monitor] metrics` says.
    pub fn for_config(config: &crate::config::Config) -> Metrics {
        Metrics::with_counting(config.monitor.metrics)
    }

    fn with_counting(on: bool) -> Metrics {
        let mut registry = Registry::default();
        let http = std::sync::Arc::new(HttpMetrics::new(on));
        registry.register_collector(Box::new(http.clone()));
        let dhcpv6 = dhcpv6::Dhcpv6Metrics::register(&mut registry, on);
        let ra = ra::RaMetrics::register(&mut registry, on);
        let tftp = tftp::TftpMetrics::register(&mut registry, on);
        Metrics {
            http,
            dhcpv6,
            ra,
            tftp,
            registry,
            on,
        }
    }

    /// Whether anything is counted (`[monitor] metrics`).
    pub fn on(&self) -> bool {
        self.on
    }

    /// The exposition text: every service's counters, then `hosts` and the
    /// inventory's own counters (`inventory`, when the server has one).
    pub fn render(&self, hosts: &HostCounts, inventory: Option<&LiveStats>) -> String {
        let mut scrape = Registry::default();
        scrape.register_collector(Box::new(hosts.clone()));
        if let Some(stats) = inventory {
            scrape.register_collector(Box::new(InventoryCounts {
                degraded: stats.degraded.load(Relaxed),
                observations_dropped: stats.observations_dropped.load(Relaxed),
                store_errors: stats.store_errors.load(Relaxed),
            }));
        }
        let mut out = String::with_capacity(8192);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &scrape);
        out
    }
}

/// Encodes one counter family: `series` are (label set, value) pairs.
pub(crate) fn counter_family<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (L, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in series {
        ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Encodes one gauge family: `series` are (label set, value) pairs.
pub(crate) fn gauge_family<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (L, i64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in series {
        ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Encodes one counter without labels.
pub(crate) fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    ConstCounter::new(value).encode(family)
}

/// Encodes one gauge without labels.
pub(crate) fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    let family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(value).encode(family)
}

/// The inventory's hosts at one moment: by last stage, marked for install, stuck and
/// possibly looping (the rules of [`crate::inventory::progress`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostCounts {
    /// Indexed as [`Stage::ALL`].
    pub by_stage: [u64; Stage::ALL.len()],
    pub install: u64,
    pub stuck: u64,
    pub looping: u64,
}

impl HostCounts {
    /// Counts the hosts of `inventory` at `now` (ms since the epoch).
    pub fn of(inventory: &Inventory, now: UnixMillis, watch: &Watch) -> HostCounts {
        let mut counts = HostCounts::default();
        for host in inventory.iter() {
            let state = &host.state;
            if let Some(i) = Stage::ALL.iter().position(|s| *s == state.stage) {
                counts.by_stage[i] += 1;
            }
            counts.install += u64::from(state.install);
            let attention = attention(state, now, watch);
            counts.stuck += u64::from(attention.stuck_since.is_some());
            counts.looping += u64::from(attention.looping.is_some());
        }
        counts
    }
}

impl Collector for HostCounts {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        gauge_family(
            &mut encoder,
            "sixboot_hosts",
            "Hosts in the inventory, by the last boot stage a server saw.",
            Stage::ALL
                .iter()
                .zip(self.by_stage)
                .map(|(stage, n)| ([("stage", stage.as_str())], n as i64)),
        )?;
        gauge(
            &mut encoder,
            "sixboot_hosts_install",
            "Hosts marked for installation.",
            self.install as i64,
        )?;
        gauge(
            &mut encoder,
            "sixboot_hosts_stuck",
            "Hosts whose install started (address, TFTP or script) and reached no /done in time.",
            self.stuck as i64,
        )?;
        gauge(
            &mut encoder,
            "sixboot_hosts_looping",
            "Hosts that fetched their script twice within the loop window without /done.",
            self.looping as i64,
        )
    }
}

/// The inventory's own health, read from [`LiveStats`] per scrape.
#[derive(Debug)]
struct InventoryCounts {
    degraded: bool,
    observations_dropped: u64,
    store_errors: u64,
}

impl Collector for InventoryCounts {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        gauge(
            &mut encoder,
            "sixboot_inventory_degraded",
            "1 while the inventory store is unreachable and hosts are served from memory.",
            i64::from(self.degraded),
        )?;
        counter(
            &mut encoder,
            "sixboot_inventory_observations_dropped",
            "Boot stages not recorded because the queue was full.",
            self.observations_dropped,
        )?;
        counter(
            &mut encoder,
            "sixboot_inventory_store_errors",
            "Failed writes to the inventory store.",
            self.store_errors,
        )
    }
}

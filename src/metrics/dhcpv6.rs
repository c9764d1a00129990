//! DHCPv6 counters: messages received and sent by type (RFC 8415 section 7.3), status
//! codes sent (section 21.13), boot clients by kind and architecture (the labels of
//! [`crate::dhcpv6::class`]), relayed or direct, dropped by reason, the exchange and
//! lease-log fsync latencies, and each subnet's pool.
//!
//! Written by the DHCPv6 thread and its committer only; every label value comes from a
//! fixed table, so each family has a bounded number of series.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use std::sync::OnceLock;

use crate::dhcpv6::{Ignored, Outcome};

type Labels1 = [(&'static str, &'static str); 1];
type Labels2 = [(&'static str, &'static str); 2];

/// The DHCPv6 families.
#[derive(Debug)]
pub struct Dhcpv6Metrics {
    received: Family<Labels2, Counter>,
    sent: Family<Labels1, Counter>,
    status_codes: Family<Labels1, Counter>,
    clients: Family<Labels2, Counter>,
    dropped: Family<Labels1, Counter>,
    exchange_seconds: Histogram,
    fsync_seconds: Histogram,
    pool: Family<[(&'static str, String); 2], Gauge>,
    /// `[monitor] metrics`: when false every method returns at once.
    on: bool,
    /// The series of `received` (type × via), `sent`, `status_codes` and `dropped`,
    /// resolved on first use (see [`Resolved`]).
    received_by: Resolved<{ TYPES * 2 }>,
    sent_by: Resolved<TYPES>,
    status_by: Resolved<8>,
    dropped_by: Resolved<{ DROP_REASONS.len() }>,
}

/// Message type indexes: 1 to 13 (RFC 8415 section 7.3), 0 for any other.
const TYPES: usize = 14;

/// The index of a message type for [`message_type_label`]'s series: the code, or 0
/// ("other").
fn type_index(code: u8) -> usize {
    if usize::from(code) < TYPES {
        usize::from(code)
    } else {
        0
    }
}

/// A family's series looked up once each, by a small index: a count is then one atomic
/// add instead of hashing a label set under the family's lock (the DHCPv6 thread
/// counts three or four per message). The series appear in the family on first use,
/// as with `get_or_create`.
#[derive(Debug)]
struct Resolved<const N: usize>([OnceLock<Counter>; N]);

impl<const N: usize> Default for Resolved<N> {
    fn default() -> Self {
        Resolved([const { OnceLock::new() }; N])
    }
}

impl<const N: usize> Resolved<N> {
    /// Adds one to series `index` of `family` (its labels from `labels` on first use).
    fn inc<L>(&self, index: usize, family: &Family<L, Counter>, labels: impl FnOnce() -> L)
    where
        L: Clone + std::hash::Hash + Eq,
    {
        match self.0.get(index) {
            Some(slot) => {
                slot.get_or_init(|| family.get_or_create(&labels()).clone())
                    .inc();
            }
            None => {
                family.get_or_create(&labels()).inc();
            }
        }
    }
}

/// The label of a DHCPv6 message type (RFC 8415 section 7.3), by its number.
pub fn message_type_label(code: u8) -> &'static str {
    match code {
        1 => "solicit",
        2 => "advertise",
        3 => "request",
        4 => "confirm",
        5 => "renew",
        6 => "rebind",
        7 => "reply",
        8 => "release",
        9 => "decline",
        10 => "reconfigure",
        11 => "information-request",
        12 => "relay-forw",
        13 => "relay-repl",
        _ => "other",
    }
}

/// The label of a Status Code (RFC 8415 section 21.13 and IANA's registry).
pub fn status_label(code: u16) -> &'static str {
    match code {
        0 => "success",
        1 => "unspec-fail",
        2 => "no-addrs-avail",
        3 => "no-binding",
        4 => "not-on-link",
        5 => "use-multicast",
        6 => "no-prefix-avail",
        _ => "other",
    }
}

/// Every value [`drop_reason`] gives.
pub const DROP_REASONS: [&str; 9] = [
    "malformed",
    "not-for-server",
    "no-client-id",
    "other-server",
    "unexpected-server-id",
    "unknown-host",
    "no-subnet",
    "unmapped-relay",
    "nothing-to-confirm",
];

/// Why a datagram was dropped, as a label.
pub fn drop_reason(why: &Ignored) -> &'static str {
    match why {
        Ignored::Malformed(_) => "malformed",
        Ignored::NotForServer(_) => "not-for-server",
        Ignored::NoClientId(_) => "no-client-id",
        Ignored::OtherServer(_) => "other-server",
        Ignored::UnexpectedServerId(_) => "unexpected-server-id",
        Ignored::UnknownHost(_) => "unknown-host",
        Ignored::NoSubnet => "no-subnet",
        Ignored::UnmappedRelay { .. } => "unmapped-relay",
        Ignored::NothingToConfirm => "nothing-to-confirm",
    }
}

fn via(relayed: bool) -> &'static str {
    if relayed {
        "relay"
    } else {
        "direct"
    }
}

/// The client message's type code and whether it was relayed, read from a datagram
/// that may not parse (a malformed one counts as type 0, "other").
fn peek(payload: &[u8]) -> (u8, bool) {
    match crate::dhcpv6::wire::unwrap_relays(payload) {
        Ok(unwrapped) => (
            unwrapped.client_message.first().copied().unwrap_or(0),
            !unwrapped.relays.is_empty(),
        ),
        Err(_) => (
            payload.first().copied().unwrap_or(0),
            payload.first() == Some(&12),
        ),
    }
}

impl Dhcpv6Metrics {
    /// Registers the families in `registry`; `on` false counts nothing.
    pub fn register(registry: &mut Registry, on: bool) -> Dhcpv6Metrics {
        let metrics = Dhcpv6Metrics {
            on,
            received: Family::default(),
            sent: Family::default(),
            status_codes: Family::default(),
            clients: Family::default(),
            dropped: Family::default(),
            exchange_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            fsync_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            pool: Family::default(),
            received_by: Resolved::default(),
            sent_by: Resolved::default(),
            status_by: Resolved::default(),
            dropped_by: Resolved::default(),
        };
        registry.register(
            "sixboot_dhcpv6_received",
            "DHCPv6 client messages received, by type and whether a relay forwarded them",
            metrics.received.clone(),
        );
        registry.register(
            "sixboot_dhcpv6_sent",
            "DHCPv6 messages sent, by type",
            metrics.sent.clone(),
        );
        registry.register(
            "sixboot_dhcpv6_status_codes_sent",
            "Status Code options sent (top level and per IA), by code",
            metrics.status_codes.clone(),
        );
        registry.register(
            "sixboot_dhcpv6_client_messages",
            "DHCPv6 messages answered, by boot client kind and architecture",
            metrics.clients.clone(),
        );
        registry.register(
            "sixboot_dhcpv6_dropped",
            "DHCPv6 datagrams dropped without an answer, by reason",
            metrics.dropped.clone(),
        );
        registry.register(
            "sixboot_dhcpv6_exchange_duration_seconds",
            "Time from receiving a DHCPv6 message to sending its answer (lease-log fsync included)",
            metrics.exchange_seconds.clone(),
        );
        registry.register(
            "sixboot_dhcpv6_lease_fsync_duration_seconds",
            "Time to write and fsync one batch of lease changes",
            metrics.fsync_seconds.clone(),
        );
        registry.register(
            "sixboot_dhcpv6_pool_addresses",
            "Addresses of each subnet's pool, by state (size, assigned, declined)",
            metrics.pool.clone(),
        );
        // Known label values start at zero, so a rate over them is defined from the
        // first scrape (and dashboards see the families before the first event).
        for code in 0..=6 {
            let _ = metrics
                .status_codes
                .get_or_create(&[("code", status_label(code))]);
        }
        for kind in ["advertise", "reply"] {
            let _ = metrics.sent.get_or_create(&[("type", kind)]);
        }
        for reason in DROP_REASONS {
            let _ = metrics.dropped.get_or_create(&[("reason", reason)]);
        }
        metrics
    }

    /// Counts a message that got an answer.
    pub fn answered(&self, outcome: &Outcome) {
        if !self.on {
            return;
        }
        self.count_received(u8::from(outcome.message_type), outcome.relay_hops > 0);
        let sent = u8::from(outcome.reply_type);
        self.sent_by.inc(type_index(sent), &self.sent, || {
            [("type", message_type_label(sent))]
        });
        for &code in &outcome.status_codes {
            let index = usize::from(code.min(7));
            self.status_by
                .inc(index, &self.status_codes, || [("code", status_label(code))]);
        }
        self.clients
            .get_or_create(&[
                ("client", outcome.client.kind.label()),
                ("arch", outcome.client.arch.map_or("none", |a| a.label())),
            ])
            .inc();
    }

    /// Counts a datagram that was dropped.
    pub fn dropped(&self, payload: &[u8], why: &Ignored) {
        if !self.on {
            return;
        }
        let (message_type, relayed) = peek(payload);
        self.count_received(message_type, relayed);
        let reason = drop_reason(why);
        let index = DROP_REASONS.iter().position(|r| *r == reason);
        self.dropped_by
            .inc(index.unwrap_or(usize::MAX), &self.dropped, || {
                [("reason", reason)]
            });
    }

    fn count_received(&self, message_type: u8, relayed: bool) {
        let index = type_index(message_type) * 2 + usize::from(relayed);
        self.received_by.inc(index, &self.received, || {
            [
                ("type", message_type_label(message_type)),
                ("via", via(relayed)),
            ]
        });
    }

    /// Records one exchange's duration.
    pub fn exchange(&self, seconds: f64) {
        if !self.on {
            return;
        }
        self.exchange_seconds.observe(seconds);
    }

    /// Records one lease-log fsync's duration.
    pub fn fsync(&self, seconds: f64) {
        if !self.on {
            return;
        }
        self.fsync_seconds.observe(seconds);
    }

    /// Sets a subnet's pool gauges.
    pub fn pool(&self, subnet: &str, size: u64, assigned: u64, declined: u64) {
        if !self.on {
            return;
        }
        for (state, value) in [
            ("size", size),
            ("assigned", assigned),
            ("declined", declined),
        ] {
            self.pool
                .get_or_create(&[("subnet", subnet.to_owned()), ("state", state.to_owned())])
                .set(value.min(i64::MAX as u64) as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::metrics::{HostCounts, Metrics};

    #[test]
    fn resolved_series_count_under_their_labels() {
        let m = Metrics::new();
        // A Solicit (type 1), direct; then a Relay-Forw (type 12) too short to unwrap.
        let solicit = [1u8, 0, 0, 1];
        for _ in 0..2 {
            m.dhcpv6
                .dropped(&solicit, &crate::dhcpv6::Ignored::NoSubnet);
        }
        m.dhcpv6
            .dropped(&[12u8, 0], &crate::dhcpv6::Ignored::NoSubnet);
        m.dhcpv6
            .dropped(&[200u8], &crate::dhcpv6::Ignored::NoSubnet);
        let out = m.render(&HostCounts::default(), None);
        for line in [
            "sixboot_dhcpv6_received_total{type=\"solicit\",via=\"direct\"} 2",
            "sixboot_dhcpv6_received_total{type=\"relay-forw\",via=\"relay\"} 1",
            "sixboot_dhcpv6_received_total{type=\"other\",via=\"direct\"} 1",
            "sixboot_dhcpv6_dropped_total{reason=\"no-subnet\"} 4",
            "sixboot_dhcpv6_dropped_total{reason=\"malformed\"} 0",
        ] {
            assert!(out.lines().any(|l| l == line), "no `{line}` in\n{out}");
        }
    }
}

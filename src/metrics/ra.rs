//! Router discovery counters (RFC 4861 section 6.2): advertisements sent (periodic,
//! solicited, final) and solicitations received (answered at once, folded into the
//! next multicast, dropped for a hop limit other than 255).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

type Labels1 = [(&'static str, &'static str); 1];

/// Why an RA went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// The scheduler's multicast (section 6.2.4).
    Periodic,
    /// A unicast answer to an RS (section 6.2.6).
    Solicited,
    /// Router lifetime 0 at shutdown (section 6.2.5).
    Final,
}

/// What became of an RS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Solicitation {
    Answered,
    /// Answered by the next multicast (rate limit of section 6.2.6).
    Multicast,
    /// Hop limit not 255 (section 6.1.1).
    Dropped,
}

/// The RA families.
#[derive(Debug)]
pub struct RaMetrics {
    sent: Family<Labels1, Counter>,
    solicitations: Family<Labels1, Counter>,
    /// `[monitor] metrics`: when false every method returns at once.
    on: bool,
}

impl RaMetrics {
    /// Registers the families in `registry`; `on` false counts nothing.
    pub fn register(registry: &mut Registry, on: bool) -> RaMetrics {
        let metrics = RaMetrics {
            on,
            sent: Family::default(),
            solicitations: Family::default(),
        };
        registry.register(
            "sixboot_ra_advertisements_sent",
            "Router Advertisements sent, by kind (periodic, solicited, final)",
            metrics.sent.clone(),
        );
        registry.register(
            "sixboot_ra_solicitations_received",
            "Router Solicitations received, by result (answered, multicast, dropped)",
            metrics.solicitations.clone(),
        );
        for kind in ["periodic", "solicited", "final"] {
            let _ = metrics.sent.get_or_create(&[("kind", kind)]);
        }
        for result in ["answered", "multicast", "dropped"] {
            let _ = metrics.solicitations.get_or_create(&[("result", result)]);
        }
        metrics
    }

    pub fn sent(&self, kind: Sent) {
        if !self.on {
            return;
        }
        let label = match kind {
            Sent::Periodic => "periodic",
            Sent::Solicited => "solicited",
            Sent::Final => "final",
        };
        self.sent.get_or_create(&[("kind", label)]).inc();
    }

    pub fn solicitation(&self, result: Solicitation) {
        if !self.on {
            return;
        }
        let label = match result {
            Solicitation::Answered => "answered",
            Solicitation::Multicast => "multicast",
            Solicitation::Dropped => "dropped",
        };
        self.solicitations.get_or_create(&[("result", label)]).inc();
    }
}

//! When to send router advertisements (RFC 4861 section 6.2.4 and 6.2.6), given the
//! time and a random number by the caller.

use std::time::{Duration, Instant};

/// RFC 4861 section 10: MAX_INITIAL_RTR_ADVERT_INTERVAL and MAX_INITIAL_RTR_ADVERTISEMENTS.
const MAX_INITIAL_INTERVAL: Duration = Duration::from_secs(16);
const MAX_INITIAL_ADVERTISEMENTS: u8 = 3;
/// MIN_DELAY_BETWEEN_RAS: multicast RAs are at least this far apart.
const MIN_DELAY_BETWEEN_RAS: Duration = Duration::from_secs(3);

/// How to answer a Router Solicitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SolicitAnswer {
    /// Unicast to the soliciting host now (section 6.2.6 allows it when the RS has a
    /// source address; no multicast rate limit applies, so the host waits for nothing).
    UnicastNow,
    /// The next multicast RA is due at this time (rate limited).
    MulticastAt(Instant),
}

/// The unsolicited RA timer of one interface.
#[derive(Debug, Clone)]
pub struct Scheduler {
    min_interval: Duration,
    max_interval: Duration,
    initial_left: u8,
    next_multicast: Instant,
    last_multicast: Option<Instant>,
}

impl Scheduler {
    /// A scheduler whose first RA is due at `now`.
    pub fn new(min_interval_secs: u32, max_interval_secs: u32, now: Instant) -> Scheduler {
        let max = Duration::from_secs(u64::from(max_interval_secs.max(4)));
        let min = Duration::from_secs(u64::from(min_interval_secs.max(3))).min(max);
        Scheduler {
            min_interval: min,
            max_interval: max,
            initial_left: MAX_INITIAL_ADVERTISEMENTS,
            next_multicast: now,
            last_multicast: None,
        }
    }

    /// When the next multicast RA is due.
    pub fn next_multicast(&self) -> Instant {
        self.next_multicast
    }

    /// Whether a multicast RA is due at `now`; if so, records it as sent and picks the
    /// next time uniformly in `[min, max]` using `random`.
    pub fn poll(&mut self, now: Instant, random: u32) -> bool {
        if now < self.next_multicast {
            return false;
        }
        let span = self.max_interval - self.min_interval;
        let fraction = f64::from(random) / f64::from(u32::MAX);
        let mut interval = self.min_interval + span.mul_f64(fraction);
        if self.initial_left > 0 {
            self.initial_left -= 1;
            interval = interval.min(MAX_INITIAL_INTERVAL);
        }
        self.last_multicast = Some(now);
        self.next_multicast = now + interval;
        true
    }

    /// A Router Solicitation arrived at `now`; `source_specified` is false for an RS
    /// from the unspecified address, which must be answered by multicast.
    pub fn on_solicit(&mut self, now: Instant, source_specified: bool) -> SolicitAnswer {
        if source_specified {
            return SolicitAnswer::UnicastNow;
        }
        let earliest = self
            .last_multicast
            .map_or(now, |last| (last + MIN_DELAY_BETWEEN_RAS).max(now));
        self.next_multicast = self.next_multicast.min(earliest);
        SolicitAnswer::MulticastAt(self.next_multicast)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_advertisements_come_quickly_then_within_the_interval() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(30, 200, t0);
        assert!(s.poll(t0, u32::MAX));
        assert_eq!(s.next_multicast(), t0 + MAX_INITIAL_INTERVAL);
        assert!(!s.poll(t0 + Duration::from_secs(15), 0));
        let mut now = s.next_multicast();
        for _ in 0..2 {
            assert!(s.poll(now, u32::MAX));
            now = s.next_multicast();
        }
        assert!(s.poll(now, u32::MAX));
        assert_eq!(s.next_multicast(), now + Duration::from_secs(200));
        let later = s.next_multicast();
        assert!(s.poll(later, 0));
        assert_eq!(s.next_multicast(), later + Duration::from_secs(30));
    }

    #[test]
    fn solicitations_get_unicast_at_once_or_rate_limited_multicast() {
        let t0 = Instant::now();
        let mut s = Scheduler::new(30, 200, t0);
        assert!(s.poll(t0, 0));
        assert_eq!(s.on_solicit(t0, true), SolicitAnswer::UnicastNow);
        let one_second = t0 + Duration::from_secs(1);
        assert_eq!(
            s.on_solicit(one_second, false),
            SolicitAnswer::MulticastAt(t0 + MIN_DELAY_BETWEEN_RAS)
        );
        let ten = t0 + Duration::from_secs(10);
        assert_eq!(
            s.on_solicit(ten, false),
            SolicitAnswer::MulticastAt(t0 + MIN_DELAY_BETWEEN_RAS)
        );
        assert!(s.poll(ten, 0));
        let eleven = ten + Duration::from_secs(1);
        assert_eq!(
            s.on_solicit(eleven, false),
            SolicitAnswer::MulticastAt(ten + MIN_DELAY_BETWEEN_RAS)
        );
    }
}

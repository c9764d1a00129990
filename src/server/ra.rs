//! One interface's router advertisement thread.

use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::sys::socket::{recvfrom, sendto, MsgFlags, SockaddrIn6};

use super::{wait_readable, RaSocket, ALL_NODES, POLL_INTERVAL};
use crate::config::Config;
use crate::ra::{advert_from_config, Repr, Scheduler, SolicitAnswer};

/// xorshift32: the scheduler only needs jitter, not secrecy.
fn next_random(state: &mut u32) -> u32 {
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    *state
}

pub(super) fn serve(config: &Config, s: RaSocket, stop: &AtomicBool) -> anyhow::Result<()> {
    let advert =
        Repr::RouterAdvert(advert_from_config(&config.ra, &config.dhcp, s.link_layer)).to_bytes();
    let all_nodes = SockaddrIn6::from(SocketAddrV6::new(ALL_NODES, 0, 0, s.ifindex));
    let fd = s.socket.as_raw_fd();
    let mut scheduler = Scheduler::new(
        config.ra.min_interval_secs,
        config.ra.max_interval_secs,
        Instant::now(),
    );
    let mut random = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.subsec_nanos() | 1);
    let mut buffer = vec![0u8; 2048];
    tracing::info!(interface = %s.interface, managed = config.ra.managed,
        other = config.ra.other, "router advertisements on");
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if scheduler.poll(now, next_random(&mut random)) {
            if let Err(err) = sendto(fd, &advert, &all_nodes, MsgFlags::empty()) {
                tracing::warn!(interface = %s.interface, %err, "RA send failed");
            }
        }
        let timeout = scheduler
            .next_multicast()
            .saturating_duration_since(now)
            .min(POLL_INTERVAL);
        if !wait_readable(&[&s.socket], timeout)[0] {
            continue;
        }
        loop {
            let (len, from) = match recvfrom::<SockaddrIn6>(fd, &mut buffer) {
                Ok((len, Some(from))) => (len, SocketAddrV6::from(from)),
                Ok((_, None)) => continue,
                Err(Errno::EAGAIN) => break,
                Err(err) => {
                    tracing::warn!(interface = %s.interface, %err, "RA receive failed");
                    break;
                }
            };
            let Ok(Repr::RouterSolicit { .. }) = Repr::parse(&buffer[..len]) else {
                continue;
            };
            let specified = *from.ip() != Ipv6Addr::UNSPECIFIED;
            match scheduler.on_solicit(Instant::now(), specified) {
                SolicitAnswer::UnicastNow => {
                    tracing::debug!(interface = %s.interface, from = %from, "RS answered");
                    if let Err(err) =
                        sendto(fd, &advert, &SockaddrIn6::from(from), MsgFlags::empty())
                    {
                        tracing::warn!(to = %from, %err, "RA send failed");
                    }
                }
                SolicitAnswer::MulticastAt(_) => {}
            }
        }
    }
    // RFC 4861 section 6.2.5: a router that stops advertising itself as a default
    // router says so, so that hosts drop it now instead of when the lifetime runs out.
    if config.ra.router_lifetime_secs > 0 {
        let mut last = advert_from_config(&config.ra, &config.dhcp, s.link_layer);
        last.router_lifetime = 0;
        let _ = sendto(
            fd,
            &Repr::RouterAdvert(last).to_bytes(),
            &all_nodes,
            MsgFlags::empty(),
        );
    }
    Ok(())
}

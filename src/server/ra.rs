//! One interface's router advertisement thread.

use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use nix::libc;
use nix::sys::socket::{sendto, MsgFlags, SockaddrIn6};

use super::{wait_readable, RaSocket, ALL_NODES, POLL_INTERVAL};
use crate::config::Config;
use crate::inventory::live::now_millis;
use crate::inventory::{Live, Observation, Stage};
use crate::mac::Mac;
use crate::metrics::ra::{Sent, Solicitation};
use crate::metrics::Metrics;
use crate::ra::{advert_from_config, NdiscOption, Repr, Scheduler, SolicitAnswer};

/// xorshift32: the scheduler only needs jitter, not secrecy.
fn next_random(state: &mut u32) -> u32 {
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    *state
}

/// Asks the kernel to report each datagram's IPv6 hop limit (RFC 3542 section 6.3).
fn enable_hop_limit_reports(fd: libc::c_int) -> std::io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `on` outlives the call and its size is passed with it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_RECVHOPLIMIT,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// recvmsg(2) that also returns the IPV6_HOPLIMIT ancillary data, which nix 0.29
/// does not decode.
fn recv_with_hop_limit(
    fd: libc::c_int,
    buffer: &mut [u8],
) -> std::io::Result<(usize, SocketAddrV6, Option<i32>)> {
    // SAFETY: every pointer handed to recvmsg points into a local that lives for the
    // whole call, with its true length; the cmsg macros walk only `control`, whose
    // length recvmsg has set in `msg.msg_controllen`.
    unsafe {
        let mut address: libc::sockaddr_in6 = std::mem::zeroed();
        let mut iov = libc::iovec {
            iov_base: buffer.as_mut_ptr().cast(),
            iov_len: buffer.len(),
        };
        let mut control = [0u64; 16];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_name = (&mut address as *mut libc::sockaddr_in6).cast();
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        let n = libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT);
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut hop_limit = None;
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::IPPROTO_IPV6 && (*cmsg).cmsg_type == libc::IPV6_HOPLIMIT
            {
                hop_limit = Some(std::ptr::read_unaligned(
                    libc::CMSG_DATA(cmsg).cast::<libc::c_int>(),
                ));
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        let from = SocketAddrV6::new(
            Ipv6Addr::from(address.sin6_addr.s6_addr),
            u16::from_be(address.sin6_port),
            address.sin6_flowinfo,
            address.sin6_scope_id,
        );
        Ok((n as usize, from, hop_limit))
    }
}

/// Where an RA thread reports what it sees.
pub(super) struct Seen {
    pub metrics: Arc<Metrics>,
    /// An answered RS is the host's "rs" boot stage.
    pub inventory: Option<Arc<Live>>,
}

impl Seen {
    /// Records an answered RS from `from` as the sender's boot stage: its MAC from the
    /// Source Link-Layer Address option (RFC 4861 section 4.1), else from an EUI-64
    /// link-local source.
    fn solicited(&self, from: &SocketAddrV6, options: &[NdiscOption]) {
        let Some(live) = &self.inventory else {
            return;
        };
        let mac = options
            .iter()
            .find_map(|option| match option {
                NdiscOption::SourceLinkLayer(bytes) => {
                    <[u8; 6]>::try_from(bytes.as_slice()).ok().map(Mac)
                }
                _ => None,
            })
            .or_else(|| Mac::from_eui64_address(from.ip()));
        if let Some(mac) = mac {
            live.observe(Observation {
                mac,
                stage: Stage::Rs,
                detail: None,
                at: now_millis(),
                peer: Some((*from.ip()).into()),
            });
        }
    }
}

pub(super) fn serve(
    mut configs: tokio::sync::watch::Receiver<Arc<Config>>,
    s: RaSocket,
    stop: &AtomicBool,
    seen: &Seen,
) -> anyhow::Result<()> {
    let mut config = configs.borrow_and_update().clone();
    let mut advert =
        Repr::RouterAdvert(advert_from_config(&config.ra, &config.dhcp, s.link_layer)).to_bytes();
    let all_nodes = SockaddrIn6::from(SocketAddrV6::new(ALL_NODES, 0, 0, s.ifindex));
    let fd = s.socket.as_raw_fd();
    enable_hop_limit_reports(fd)?;
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
        if configs.has_changed().unwrap_or(false) {
            // A reload: advertise the new prefixes and flags from the next RA on.
            // RFC 4861 section 6.2.4: changed contents go out at once, then as at start.
            config = configs.borrow_and_update().clone();
            let new_advert =
                Repr::RouterAdvert(advert_from_config(&config.ra, &config.dhcp, s.link_layer))
                    .to_bytes();
            if new_advert != advert {
                advert = new_advert;
                scheduler = Scheduler::new(
                    config.ra.min_interval_secs,
                    config.ra.max_interval_secs,
                    Instant::now(),
                );
            }
        }
        let now = Instant::now();
        if scheduler.poll(now, next_random(&mut random)) {
            match sendto(fd, &advert, &all_nodes, MsgFlags::empty()) {
                Ok(_) => {
                    tracing::debug!(interface = %s.interface, kind = "periodic", "RA sent");
                    seen.metrics.ra.sent(Sent::Periodic);
                }
                Err(err) => tracing::warn!(interface = %s.interface, %err, "RA send failed"),
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
            let (len, from, hop_limit) = match recv_with_hop_limit(fd, &mut buffer) {
                Ok(received) => received,
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(err) => {
                    tracing::warn!(interface = %s.interface, %err, "RA receive failed");
                    break;
                }
            };
            let Ok(Repr::RouterSolicit { options }) = Repr::parse(&buffer[..len]) else {
                continue;
            };
            // RFC 4861 section 6.1.1: a solicitation that crossed a router is forged.
            if hop_limit != Some(255) {
                seen.metrics.ra.solicitation(Solicitation::Dropped);
                tracing::debug!(from = %from, ?hop_limit, "RS with hop limit other than 255 dropped");
                continue;
            }
            let specified = *from.ip() != Ipv6Addr::UNSPECIFIED;
            match scheduler.on_solicit(Instant::now(), specified) {
                SolicitAnswer::UnicastNow => {
                    tracing::debug!(interface = %s.interface, from = %from, "RS answered");
                    seen.metrics.ra.solicitation(Solicitation::Answered);
                    match sendto(fd, &advert, &SockaddrIn6::from(from), MsgFlags::empty()) {
                        Ok(_) => seen.metrics.ra.sent(Sent::Solicited),
                        Err(err) => tracing::warn!(to = %from, %err, "RA send failed"),
                    }
                }
                SolicitAnswer::MulticastAt(_) => {
                    // RFC 4861 section 6.2.6: within MIN_DELAY_BETWEEN_RAS of the last
                    // RA, the answer is the next multicast RA; still an answered RS.
                    tracing::debug!(interface = %s.interface, from = %from, "RS answered by the next multicast RA");
                    seen.metrics.ra.solicitation(Solicitation::Multicast)
                }
            }
            seen.solicited(&from, &options);
        }
    }
    // RFC 4861 section 6.2.5: a router that stops advertising itself as a default
    // router says so, so that hosts drop it now instead of when the lifetime runs out.
    if config.ra.router_lifetime_secs > 0 {
        let mut last = advert_from_config(&config.ra, &config.dhcp, s.link_layer);
        last.router_lifetime = 0;
        if sendto(
            fd,
            &Repr::RouterAdvert(last).to_bytes(),
            &all_nodes,
            MsgFlags::empty(),
        )
        .is_ok()
        {
            seen.metrics.ra.sent(Sent::Final);
        }
    }
    Ok(())
}

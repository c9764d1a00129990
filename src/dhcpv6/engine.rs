//! Message handling: who the client is, which address it gets, what the reply says.

use std::collections::{HashMap, HashSet};
use std::net::Ipv6Addr;
use std::sync::Arc;

use dhcproto::v6::{
    DhcpOption, DhcpOptions, Encodable, Encoder, IAAddr, Message, MessageType, OptionCode, Status,
    StatusCode, UnknownOption, IANA,
};

use super::wire::{self, RelayLayer, WireError};
use crate::config::{Config, Subnet, UnknownHosts};
use crate::leases::{Lease, LeaseChange, LeaseKey, LeaseTable, MacSource};
use crate::mac::Mac;

/// IANA enterprise number of Intel, used by PXE and UEFI vendor classes.
const ENTERPRISE_INTEL: u32 = 343;
/// How many pool addresses one allocation may probe before it says NoAddrsAvail.
const MAX_PROBES: u128 = 65_536;
/// The vendor class a UEFI HTTP Boot client must see in the reply (UEFI 2.x 24.7.2).
const HTTP_CLIENT: &[u8] = b"HTTPClient";

/// One datagram as the server received it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub payload: &'a [u8],
    /// The datagram's source: the client's link-local address, or a relay's.
    pub source: Ipv6Addr,
    /// The interface it arrived on, when the server knows it.
    pub interface: Option<&'a str>,
}

/// Who sent a message, as far as the engine could tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub duid: Vec<u8>,
    pub mac: Option<Mac>,
    pub mac_source: Option<MacSource>,
    /// The configured host with that MAC.
    pub host: Option<String>,
}

/// Which boot-file rule a client matched (`[boot]` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootKind {
    /// User class "iPXE": the per-host script.
    Ipxe,
    /// Client architecture 7 or 9 (x64 UEFI PXE).
    UefiPxe,
    /// Client architecture 16 (UEFI HTTP Boot).
    UefiHttp,
}

/// The engine's answer to one datagram.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub message_type: MessageType,
    pub identity: Identity,
    /// Bytes to send back to the datagram's source (already wrapped for relays).
    pub reply: Vec<u8>,
    /// To persist before `reply` leaves the machine.
    pub changes: Vec<LeaseChange>,
    /// The addresses the reply hands out.
    pub addresses: Vec<Ipv6Addr>,
    pub boot: Option<BootKind>,
}

/// Why a datagram got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Ignored {
    #[error("malformed: {0}")]
    Malformed(#[from] WireError),
    #[error("{0:?} is not a message a server answers")]
    NotForServer(MessageType),
    #[error("{0:?} without a Client Identifier")]
    NoClientId(MessageType),
    #[error("{0:?} for another server")]
    OtherServer(MessageType),
    #[error("{0:?} must not carry a Server Identifier")]
    UnexpectedServerId(MessageType),
    #[error("unknown host (MAC {0:?}) and unknown_hosts = \"ignore\"")]
    UnknownHost(Option<Mac>),
    #[error("no subnet serves this link")]
    NoSubnet,
    #[error("Confirm without addresses")]
    NothingToConfirm,
}

/// The DHCPv6 server: the validated config plus indexes built once from it.
#[derive(Debug, Clone)]
pub struct Engine {
    config: Arc<Config>,
    server_duid: Vec<u8>,
    fixed_addresses: HashMap<Ipv6Addr, Mac>,
}

struct Parsed<'a> {
    message: Message,
    relays: Vec<RelayLayer>,
    request: &'a Request<'a>,
}

impl Engine {
    /// Builds the engine; `server_duid` is the persisted DUID (see `leases`).
    pub fn new(config: Arc<Config>, server_duid: Vec<u8>) -> Engine {
        let fixed_addresses = config
            .hosts
            .iter()
            .filter_map(|host| host.address.map(|address| (address, host.mac)))
            .collect();
        Engine {
            config,
            server_duid,
            fixed_addresses,
        }
    }

    pub fn server_duid(&self) -> &[u8] {
        &self.server_duid
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Handles one datagram at `now` (Unix seconds) against `leases`.
    ///
    /// Returns the reply and the lease changes it depends on; the caller applies the
    /// changes to `leases` and persists them before sending the reply.
    pub fn handle(
        &self,
        request: &Request<'_>,
        leases: &LeaseTable,
        now: u64,
    ) -> Result<Outcome, Ignored> {
        let unwrapped = wire::unwrap_relays(request.payload)?;
        let message = wire::decode_client_message(unwrapped.client_message)?;
        let parsed = Parsed {
            message,
            relays: unwrapped.relays,
            request,
        };
        self.respond(&parsed, leases, now)
    }

    fn respond(&self, p: &Parsed<'_>, leases: &LeaseTable, now: u64) -> Result<Outcome, Ignored> {
        use MessageType as M;
        let kind = p.message.msg_type();
        let opts = p.message.opts();
        let client_id = match opts.get(OptionCode::ClientId) {
            Some(DhcpOption::ClientId(duid)) => Some(duid.clone()),
            _ => None,
        };
        let server_id = match opts.get(OptionCode::ServerId) {
            Some(DhcpOption::ServerId(duid)) => Some(duid.as_slice()),
            _ => None,
        };
        // RFC 8415 section 16: which messages must, may or must not name a server.
        match kind {
            M::Solicit | M::Confirm | M::Rebind => {
                if server_id.is_some() {
                    return Err(Ignored::UnexpectedServerId(kind));
                }
            }
            M::Request | M::Renew | M::Release | M::Decline => {
                if server_id != Some(self.server_duid.as_slice()) {
                    return Err(Ignored::OtherServer(kind));
                }
            }
            M::InformationRequest => {
                if server_id.is_some_and(|id| id != self.server_duid.as_slice()) {
                    return Err(Ignored::OtherServer(kind));
                }
            }
            other => return Err(Ignored::NotForServer(other)),
        }
        let duid = match (client_id, kind) {
            (Some(duid), _) => duid,
            (None, M::InformationRequest) => Vec::new(),
            (None, _) => return Err(Ignored::NoClientId(kind)),
        };
        let identity = self.identify(p, duid);
        if identity.host.is_none() && self.config.dhcp.unknown_hosts == UnknownHosts::Ignore {
            return Err(Ignored::UnknownHost(identity.mac));
        }
        let subnet = self.subnet_for(p);
        let ias = ia_nas(opts);

        let mut reply_opts = DhcpOptions::new();
        let mut changes = Vec::new();
        let mut addresses = Vec::new();
        let rapid = kind == M::Solicit
            && self.config.dhcp.rapid_commit
            && opts.get(OptionCode::RapidCommit).is_some();
        let reply_type = if kind == M::Solicit && !rapid {
            M::Advertise
        } else {
            M::Reply
        };
        let expires = now + u64::from(self.config.dhcp.valid_lifetime_secs);

        match kind {
            M::Solicit | M::Request => {
                let subnet = subnet.ok_or(Ignored::NoSubnet)?;
                let commit = kind == M::Request || rapid;
                let mut taken: HashSet<Ipv6Addr> = HashSet::new();
                for ia in &ias {
                    let key = self.key(&identity, ia.id);
                    match self.choose_address(&identity, &key, subnet, leases, now, &taken) {
                        Some(address) => {
                            taken.insert(address);
                            addresses.push(address);
                            reply_opts.insert(self.ia_with(ia.id, address));
                            if commit {
                                changes.push(LeaseChange::Bind(Lease {
                                    key,
                                    address,
                                    mac_source: identity.mac_source,
                                    host: identity.host.clone(),
                                    expires,
                                    declined: false,
                                }));
                            }
                        }
                        None => reply_opts.insert(ia_status(
                            ia.id,
                            Status::NoAddrsAvail,
                            "no address left for this client",
                        )),
                    }
                }
                if !ias.is_empty() && addresses.is_empty() && kind == M::Solicit {
                    reply_opts.insert(status(Status::NoAddrsAvail, "no addresses available"));
                }
                if rapid {
                    reply_opts.insert(DhcpOption::RapidCommit);
                }
            }
            M::Renew | M::Rebind => {
                for ia in &ias {
                    let key = self.key(&identity, ia.id);
                    let bound = leases.by_key(&key).filter(|lease| {
                        subnet.map_or(true, |s| s.prefix.contains(&lease.address))
                            && leases.is_free_for(&lease.address, &key, now)
                    });
                    match bound {
                        Some(lease) => {
                            addresses.push(lease.address);
                            let mut ia_reply = self.ia_with(ia.id, lease.address);
                            // Addresses the client lists that are not its binding any
                            // more get zero lifetimes (RFC 8415 section 18.3.4).
                            if let DhcpOption::IANA(out) = &mut ia_reply {
                                for asked in ia_addresses(ia) {
                                    if asked != lease.address {
                                        out.opts.insert(DhcpOption::IAAddr(IAAddr {
                                            addr: asked,
                                            preferred_life: 0,
                                            valid_life: 0,
                                            opts: DhcpOptions::new(),
                                        }));
                                    }
                                }
                            }
                            reply_opts.insert(ia_reply);
                            changes.push(LeaseChange::Bind(Lease {
                                expires,
                                mac_source: identity.mac_source,
                                host: identity.host.clone(),
                                ..lease.clone()
                            }));
                        }
                        None => reply_opts.insert(ia_status(
                            ia.id,
                            Status::NoBinding,
                            "no binding for this IA",
                        )),
                    }
                }
            }
            M::Release | M::Decline => {
                for ia in &ias {
                    let key = self.key(&identity, ia.id);
                    let mut found = false;
                    for address in ia_addresses(ia) {
                        if leases.by_key(&key).is_some_and(|l| l.address == address) {
                            found = true;
                            changes.push(if kind == M::Release {
                                LeaseChange::Release {
                                    key: key.clone(),
                                    address,
                                }
                            } else {
                                LeaseChange::Bind(Lease {
                                    key: key.clone(),
                                    address,
                                    mac_source: identity.mac_source,
                                    host: identity.host.clone(),
                                    expires,
                                    declined: true,
                                })
                            });
                        }
                    }
                    if !found {
                        reply_opts.insert(ia_status(
                            ia.id,
                            Status::NoBinding,
                            "no binding for this IA",
                        ));
                    }
                }
                reply_opts.insert(status(Status::Success, "done"));
            }
            M::Confirm => {
                let subnet = subnet.ok_or(Ignored::NoSubnet)?;
                let listed: Vec<Ipv6Addr> = ias.iter().flat_map(|ia| ia_addresses(ia)).collect();
                if listed.is_empty() {
                    return Err(Ignored::NothingToConfirm);
                }
                if listed.iter().all(|a| subnet.prefix.contains(a)) {
                    reply_opts.insert(status(Status::Success, "all addresses on link"));
                } else {
                    reply_opts.insert(status(Status::NotOnLink, "not on this link"));
                }
            }
            _ => {}
        }

        // Identifiers first, then what the client asked for.
        if !identity.duid.is_empty() {
            reply_opts.insert(DhcpOption::ClientId(identity.duid.clone()));
        }
        reply_opts.insert(DhcpOption::ServerId(self.server_duid.clone()));
        if kind == M::Solicit && !rapid {
            // The highest preference makes a client take this Advertise at once.
            reply_opts.insert(DhcpOption::Preference(255));
        }
        let boot = if matches!(kind, M::Release | M::Decline) {
            None
        } else {
            self.add_requested_options(opts, &identity, &mut reply_opts)
        };

        let mut message = Message::new_with_id(reply_type, p.message.xid());
        message.set_opts(reply_opts);
        let mut bytes = Vec::with_capacity(256);
        message
            .encode(&mut Encoder::new(&mut bytes))
            .map_err(|e| Ignored::Malformed(WireError::Decode(e.to_string())))?;
        Ok(Outcome {
            message_type: kind,
            identity,
            reply: wire::wrap_reply(&p.relays, bytes),
            changes,
            addresses,
            boot,
        })
    }

    /// Finds the client's MAC: DUID-LLT/LL, then relay option 79, then the EUI-64 of
    /// its link-local address (cross-checked with iPXE's IAID).
    fn identify(&self, p: &Parsed<'_>, duid: Vec<u8>) -> Identity {
        let found = mac_from_duid(&duid)
            .map(|mac| (mac, MacSource::Duid))
            .or_else(|| {
                p.relays.iter().rev().find_map(|layer| {
                    layer
                        .client_link_layer
                        .as_ref()
                        .and_then(|(kind, address)| mac_from_link_layer(*kind, address))
                        .map(|mac| (mac, MacSource::RelayOption79))
                })
            })
            .or_else(|| {
                let peer = p
                    .relays
                    .last()
                    .map_or(p.request.source, |layer| layer.peer_address);
                if peer.segments()[0] & 0xffc0 != 0xfe80 {
                    return None;
                }
                let mac = Mac::from_eui64_address(&peer)?;
                let iaid_matches =
                    p.message.opts().get(OptionCode::IANA).is_some_and(
                        |o| matches!(o, DhcpOption::IANA(ia) if ia.id == mac.ipxe_iaid()),
                    );
                Some((
                    mac,
                    if iaid_matches {
                        MacSource::Eui64Iaid
                    } else {
                        MacSource::Eui64
                    },
                ))
            });
        let (mac, mac_source) = match found {
            Some((mac, source)) => (Some(mac), Some(source)),
            None => (None, None),
        };
        let host = mac
            .and_then(|mac| self.config.host(&mac))
            .map(|h| h.name.clone());
        Identity {
            duid,
            mac,
            mac_source,
            host,
        }
    }

    fn key(&self, identity: &Identity, iaid: u32) -> LeaseKey {
        LeaseKey {
            duid: identity.duid.clone(),
            iaid,
            mac: identity.mac,
        }
    }

    /// The subnet for this client: the relay's global link-address when relayed,
    /// else the subnet tied to the arrival interface, else the only subnet.
    fn subnet_for(&self, p: &Parsed<'_>) -> Option<&Subnet> {
        let subnets = &self.config.dhcp.subnets;
        // A relay names the client's link by a global link-address; one that sends
        // `::` or a link-local address (perfdhcp -A 1 does) sits on the server's own
        // link, so the arrival interface decides as for direct traffic.
        let link = p
            .relays
            .iter()
            .rev()
            .map(|layer| layer.link_address)
            .find(|a| !a.is_unspecified() && a.segments()[0] & 0xffc0 != 0xfe80);
        if let Some(link) = link {
            return subnets.iter().find(|s| s.prefix.contains(&link));
        }
        if let Some(interface) = p.request.interface {
            if let Some(s) = subnets
                .iter()
                .find(|s| s.interface.as_deref() == Some(interface))
            {
                return Some(s);
            }
        }
        let untied: Vec<&Subnet> = subnets.iter().filter(|s| s.interface.is_none()).collect();
        match (subnets.len(), untied.len()) {
            (1, _) => subnets.first(),
            (_, 1) => untied.first().copied(),
            _ => None,
        }
    }

    /// The host's fixed address first, then its current binding, then the pool.
    fn choose_address(
        &self,
        identity: &Identity,
        key: &LeaseKey,
        subnet: &Subnet,
        leases: &LeaseTable,
        now: u64,
        taken: &HashSet<Ipv6Addr>,
    ) -> Option<Ipv6Addr> {
        if let Some(host) = identity.mac.and_then(|mac| self.config.host(&mac)) {
            if let Some(address) = host.address.filter(|a| subnet.prefix.contains(a)) {
                // The same machine may come back with a new DUID (reinstalled, or
                // firmware then OS): the fixed address follows the MAC.
                let free = match leases.by_address(&address) {
                    None => true,
                    Some(lease) => {
                        lease.expires <= now || (!lease.declined && lease.key.mac == Some(host.mac))
                    }
                };
                if free && !taken.contains(&address) {
                    return Some(address);
                }
                // Still held by another machine (the config changed under a live
                // lease): serve from the pool until that lease ends.
                tracing::warn!(%address, mac = %host.mac, "fixed address still leased to another client");
            }
        }
        if let Some(lease) = leases.by_key(key) {
            if subnet.prefix.contains(&lease.address)
                && !self.fixed_addresses.contains_key(&lease.address)
                && leases.is_free_for(&lease.address, key, now)
                && !taken.contains(&lease.address)
            {
                return Some(lease.address);
            }
        }
        let (start, end) = subnet.pool?;
        let (start, end) = (u128::from(start), u128::from(end));
        let size = end - start + 1;
        let first = u128::from(hash_key(key)) % size;
        (0..size.min(MAX_PROBES))
            .map(|i| Ipv6Addr::from(start + (first + i) % size))
            .find(|address| {
                !self.fixed_addresses.contains_key(address)
                    && !taken.contains(address)
                    && leases.is_free_for(address, key, now)
            })
    }

    fn ia_with(&self, iaid: u32, address: Ipv6Addr) -> DhcpOption {
        let d = &self.config.dhcp;
        let mut opts = DhcpOptions::new();
        opts.insert(DhcpOption::IAAddr(IAAddr {
            addr: address,
            preferred_life: d.preferred_lifetime_secs,
            valid_life: d.valid_lifetime_secs,
            opts: DhcpOptions::new(),
        }));
        DhcpOption::IANA(IANA {
            id: iaid,
            t1: d.t1_secs,
            t2: d.t2_secs,
            opts,
        })
    }

    /// DNS, domain search and the boot file: what the ORO asks for, and the boot
    /// file for every boot client whether asked or not (RFC 5970).
    fn add_requested_options(
        &self,
        opts: &DhcpOptions,
        identity: &Identity,
        out: &mut DhcpOptions,
    ) -> Option<BootKind> {
        let asked: Vec<OptionCode> = match opts.get(OptionCode::ORO) {
            Some(DhcpOption::ORO(oro)) => oro.opts.clone(),
            _ => Vec::new(),
        };
        let wants = |code: OptionCode| asked.contains(&code);
        let d = &self.config.dhcp;
        if wants(OptionCode::DomainNameServers) && !d.dns_servers.is_empty() {
            out.insert(DhcpOption::DomainNameServers(d.dns_servers.clone()));
        }
        if wants(OptionCode::DomainSearchList) && !d.domain_search.is_empty() {
            out.insert(DhcpOption::Unknown(UnknownOption::new(
                OptionCode::DomainSearchList,
                encode_domain_list(&d.domain_search),
            )));
        }
        let boot = boot_kind(opts);
        let b = &self.config.boot;
        let script_url = || match identity.mac {
            Some(mac) => b.script_url_for(&mac),
            None => b.ipxe_script_url.clone().filter(|u| !u.contains("{mac}")),
        };
        let url = match boot {
            Some(BootKind::Ipxe) => script_url(),
            Some(BootKind::UefiPxe) => b.efi_url.clone(),
            Some(BootKind::UefiHttp) => b.http_boot_url.clone(),
            // Any other client that asks (an OS installer, dhclient) gets the host's
            // script URL, the one thing the boot config says about that host.
            None if wants(OptionCode::OptBootfileUrl) => script_url(),
            None => None,
        };
        if let Some(url) = url {
            out.insert(DhcpOption::Unknown(UnknownOption::new(
                OptionCode::OptBootfileUrl,
                url.into_bytes(),
            )));
            if !b.bootfile_params.is_empty() {
                let mut body = Vec::new();
                for param in &b.bootfile_params {
                    body.extend_from_slice(&(param.len() as u16).to_be_bytes());
                    body.extend_from_slice(param.as_bytes());
                }
                out.insert(DhcpOption::Unknown(UnknownOption::new(
                    OptionCode::OptBootfileParam,
                    body,
                )));
            }
        }
        if boot == Some(BootKind::UefiHttp) {
            // OVMF's HTTP Boot refuses a reply without it (FIELD-NOTES).
            // Encoded by hand: dhcproto 0.12 writes the number of class items where
            // the option length belongs.
            let mut body = ENTERPRISE_INTEL.to_be_bytes().to_vec();
            body.extend_from_slice(&(HTTP_CLIENT.len() as u16).to_be_bytes());
            body.extend_from_slice(HTTP_CLIENT);
            out.insert(DhcpOption::Unknown(UnknownOption::new(
                OptionCode::VendorClass,
                body,
            )));
        }
        boot
    }
}

/// Which boot rule a message matches: the iPXE user class wins over the
/// architecture, so a chainloaded iPXE gets its script instead of itself again.
fn boot_kind(opts: &DhcpOptions) -> Option<BootKind> {
    if let Some(DhcpOption::UserClass(class)) = opts.get(OptionCode::UserClass) {
        if class.data.iter().any(|d| d.as_slice() == b"iPXE") {
            return Some(BootKind::Ipxe);
        }
    }
    let arches: Vec<u16> = match opts.get(OptionCode::ClientArchType) {
        Some(DhcpOption::Unknown(o)) => o
            .data()
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect(),
        _ => Vec::new(),
    };
    let http_client = matches!(opts.get(OptionCode::VendorClass),
        Some(DhcpOption::VendorClass(v)) if v.data.iter().any(|d| d.starts_with(b"HTTPClient")));
    if arches.contains(&16) || http_client {
        Some(BootKind::UefiHttp)
    } else if arches.iter().any(|a| matches!(a, 7 | 9)) {
        Some(BootKind::UefiPxe)
    } else {
        None
    }
}

fn ia_nas(opts: &DhcpOptions) -> Vec<&IANA> {
    opts.get_all(OptionCode::IANA)
        .unwrap_or_default()
        .iter()
        .filter_map(|o| match o {
            DhcpOption::IANA(ia) => Some(ia),
            _ => None,
        })
        .collect()
}

fn ia_addresses(ia: &IANA) -> Vec<Ipv6Addr> {
    ia.opts
        .get_all(OptionCode::IAAddr)
        .unwrap_or_default()
        .iter()
        .filter_map(|o| match o {
            DhcpOption::IAAddr(a) => Some(a.addr),
            _ => None,
        })
        .collect()
}

fn status(code: Status, message: &str) -> DhcpOption {
    DhcpOption::StatusCode(StatusCode {
        status: code,
        msg: message.to_owned(),
    })
}

fn ia_status(iaid: u32, code: Status, message: &str) -> DhcpOption {
    let mut opts = DhcpOptions::new();
    opts.insert(status(code, message));
    DhcpOption::IANA(IANA {
        id: iaid,
        t1: 0,
        t2: 0,
        opts,
    })
}

/// DUID-LLT (type 1) and DUID-LL (type 3) carry the MAC (RFC 8415 section 11).
pub(crate) fn mac_from_duid(duid: &[u8]) -> Option<Mac> {
    let kind = u16::from_be_bytes([*duid.first()?, *duid.get(1)?]);
    let hardware = u16::from_be_bytes([*duid.get(2)?, *duid.get(3)?]);
    let address = match kind {
        1 => duid.get(8..)?,
        3 => duid.get(4..)?,
        _ => return None,
    };
    mac_from_link_layer(hardware, address)
}

/// Ethernet (hardware type 1) with a 6-byte address.
fn mac_from_link_layer(hardware: u16, address: &[u8]) -> Option<Mac> {
    (hardware == 1).then(|| address.try_into().ok().map(Mac))?
}

/// FNV-1a over the lease key: a stable first guess in the pool, so a client gets
/// the same address again and clients spread without a shared cursor.
fn hash_key(key: &LeaseKey) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mac = key.mac.map_or([0; 6], |m| m.0);
    for byte in key
        .duid
        .iter()
        .chain(key.iaid.to_be_bytes().iter())
        .chain(mac.iter())
    {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// RFC 1035 section 3.1 names, uncompressed, as RFC 8415 section 10 asks.
fn encode_domain_list(domains: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for domain in domains {
        for label in domain.trim_end_matches('.').split('.') {
            if !label.is_empty() && label.len() < 64 {
                out.push(label.len() as u8);
                out.extend_from_slice(label.as_bytes());
            }
        }
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests;

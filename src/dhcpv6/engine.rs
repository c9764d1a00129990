//! Message handling: who the client is, which address it gets, what the reply says.
//!
//! [`Engine::handle`] unwraps relays and decodes; `respond` checks what every message
//! must carry, then hands over to one function per message type (RFC 8415 section
//! 18.3); `finish` adds the identifiers, the requested options and the boot options
//! ([`super::class`]) and encodes the reply.

use core::net::Ipv6Addr;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use dhcproto::v6::{
    DhcpOption, DhcpOptions, Encodable, Encoder, IAAddr, Message, MessageType, OptionCode, Status,
    StatusCode, UnknownOption, IANA,
};

use super::class::{self, BootClient, Signals};
use super::link;
use super::wire::{self, RelayLayer, WireError};
use crate::config::{Config, Subnet, UnknownHosts};
use crate::leases::{Lease, LeaseChange, LeaseKey, LeaseTable, MacSource};
use crate::mac::Mac;

/// How many pool addresses one allocation may probe before it says NoAddrsAvail.
const MAX_PROBES: u128 = 65_536;

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
    /// What kind of boot client sent the message, and its architecture.
    pub client: BootClient,
    /// The bootfile-url (option 59) the reply carries, if any.
    pub bootfile_url: Option<String>,
    /// Relay-Forw layers the message came through (0: direct).
    pub relay_hops: usize,
    /// Fixed addresses of the client's host that another client still holds (the config
    /// changed under a live lease): the client was served from the pool until that lease
    /// ends. The shell logs them; the engine does not log.
    pub fixed_addresses_held: Vec<Ipv6Addr>,
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
    /// Relayed from a link that no subnet maps (the innermost layer's fields).
    #[error(
        "relayed ({hops} hop(s)) with link-address {link_address} and Interface-ID {}: no \
         subnet maps this relay; add [[dhcp.subnets.relays]] with its link_address and/or \
         interface_id",
        .interface_id.as_deref().unwrap_or("(none)")
    )]
    UnmappedRelay {
        hops: usize,
        link_address: Ipv6Addr,
        interface_id: Option<String>,
    },
    #[error("Confirm without addresses")]
    NothingToConfirm,
}

/// The DHCPv6 server: the validated config plus indexes built once from it.
#[derive(Debug, Clone)]
pub struct Engine {
    config: Arc<Config>,
    server_duid: Vec<u8>,
    fixed_addresses: HashMap<Ipv6Addr, Mac>,
    /// Index into `config.hosts` by MAC: a fleet's inventory has 100,000 hosts, and a
    /// linear search per message would be the engine's cost.
    hosts_by_mac: HashMap<Mac, usize>,
}

/// A decoded message and what the engine learnt about it before answering.
struct Parsed<'a> {
    message: Message,
    relays: Vec<RelayLayer>,
    identity: Identity,
    /// The client's link; `None` only for a direct message on an unserved link.
    subnet: Option<&'a Subnet>,
    now: u64,
}

/// The reply under construction.
struct Reply {
    message_type: MessageType,
    opts: DhcpOptions,
    changes: Vec<LeaseChange>,
    addresses: Vec<Ipv6Addr>,
    fixed_addresses_held: Vec<Ipv6Addr>,
}

impl Reply {
    fn new(message_type: MessageType) -> Reply {
        Reply {
            message_type,
            opts: DhcpOptions::new(),
            changes: Vec::new(),
            addresses: Vec::new(),
            fixed_addresses_held: Vec::new(),
        }
    }
}

impl Engine {
    /// Builds the engine; `server_duid` is the persisted DUID (see `leases`).
    pub fn new(config: Arc<Config>, server_duid: Vec<u8>) -> Engine {
        let fixed_addresses = config
            .hosts
            .iter()
            .filter_map(|host| host.address.map(|address| (address, host.mac)))
            .collect();
        let hosts_by_mac = config
            .hosts
            .iter()
            .enumerate()
            .map(|(i, host)| (host.mac, i))
            .collect();
        Engine {
            config,
            server_duid,
            fixed_addresses,
            hosts_by_mac,
        }
    }

    /// The configured host with this MAC.
    fn host(&self, mac: &Mac) -> Option<&crate::config::Host> {
        self.hosts_by_mac
            .get(mac)
            .and_then(|&i| self.config.hosts.get(i))
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
        self.respond(message, unwrapped.relays, request, leases, now)
    }

    /// What every message goes through: the server-identifier rules, the client's
    /// identity and link; then the message type's own function, then `finish`.
    fn respond<'a>(
        &'a self,
        message: Message,
        relays: Vec<RelayLayer>,
        request: &'a Request<'a>,
        leases: &LeaseTable,
        now: u64,
    ) -> Result<Outcome, Ignored> {
        use MessageType as M;
        let kind = message.msg_type();
        let opts = message.opts();
        let server_id = match opts.get(OptionCode::ServerId) {
            Some(DhcpOption::ServerId(duid)) => Some(duid.as_slice()),
            _ => None,
        };
        // RFC 8415 section 16: which messages must, may or must not name a server.
        match kind {
            M::Solicit | M::Confirm | M::Rebind if server_id.is_some() => {
                return Err(Ignored::UnexpectedServerId(kind))
            }
            M::Request | M::Renew | M::Release | M::Decline
                if server_id != Some(self.server_duid.as_slice()) =>
            {
                return Err(Ignored::OtherServer(kind))
            }
            M::InformationRequest
                if server_id.is_some_and(|id| id != self.server_duid.as_slice()) =>
            {
                return Err(Ignored::OtherServer(kind))
            }
            M::Solicit
            | M::Confirm
            | M::Rebind
            | M::Request
            | M::Renew
            | M::Release
            | M::Decline
            | M::InformationRequest => {}
            other => return Err(Ignored::NotForServer(other)),
        }
        let duid = match opts.get(OptionCode::ClientId) {
            Some(DhcpOption::ClientId(duid)) => duid.clone(),
            _ if kind == M::InformationRequest => Vec::new(),
            _ => return Err(Ignored::NoClientId(kind)),
        };
        let identity = self.identify(&message, &relays, request.source, duid);
        if identity.host.is_none() && self.config.dhcp.unknown_hosts == UnknownHosts::Ignore {
            return Err(Ignored::UnknownHost(identity.mac));
        }
        let subnet = link::subnet_for(&self.config.dhcp.subnets, &relays, request.interface)?;
        let p = Parsed {
            message,
            relays,
            identity,
            subnet,
            now,
        };
        let reply = match kind {
            M::Solicit => self.solicit(&p, leases)?,
            M::Request => self.request(&p, leases)?,
            M::Renew => self.renew(&p, leases),
            M::Rebind => self.rebind(&p, leases),
            M::Release => self.release(&p, leases),
            M::Decline => self.decline(&p, leases),
            M::Confirm => self.confirm(&p)?,
            _ => self.information_request(),
        };
        self.finish(p, reply)
    }

    /// Solicit (RFC 8415 section 18.3.1): an Advertise that commits nothing, or with
    /// Rapid Commit (section 18.3.1, 21.14) a committed Reply.
    fn solicit(&self, p: &Parsed<'_>, leases: &LeaseTable) -> Result<Reply, Ignored> {
        let rapid = self.config.dhcp.rapid_commit
            && p.message.opts().get(OptionCode::RapidCommit).is_some();
        let mut reply = if rapid {
            Reply::new(MessageType::Reply)
        } else {
            Reply::new(MessageType::Advertise)
        };
        self.assign(p, leases, rapid, &mut reply)?;
        if !ia_nas(p.message.opts()).is_empty() && reply.addresses.is_empty() {
            reply
                .opts
                .insert(status(Status::NoAddrsAvail, "no addresses available"));
        }
        if rapid {
            reply.opts.insert(DhcpOption::RapidCommit);
        } else {
            // The highest preference makes a client take this Advertise at once.
            reply.opts.insert(DhcpOption::Preference(255));
        }
        Ok(reply)
    }

    /// Request (section 18.3.2): the same choice as the Advertise, committed.
    fn request(&self, p: &Parsed<'_>, leases: &LeaseTable) -> Result<Reply, Ignored> {
        let mut reply = Reply::new(MessageType::Reply);
        self.assign(p, leases, true, &mut reply)?;
        Ok(reply)
    }

    /// Renew (section 18.3.4): extend the bindings the client still has.
    fn renew(&self, p: &Parsed<'_>, leases: &LeaseTable) -> Reply {
        self.extend(p, leases)
    }

    /// Rebind (section 18.3.5): as Renew, sent to any server; bindings on another
    /// link get no lifetimes (they are not in this link's subnet).
    fn rebind(&self, p: &Parsed<'_>, leases: &LeaseTable) -> Reply {
        self.extend(p, leases)
    }

    /// Release (section 18.3.7): the listed addresses are free again.
    fn release(&self, p: &Parsed<'_>, leases: &LeaseTable) -> Reply {
        self.give_back(p, leases, |key, address, _| LeaseChange::Release {
            key: key.clone(),
            address,
        })
    }

    /// Decline (section 18.3.8): the listed addresses are in use by someone else;
    /// they stay bound, marked declined, until the lease would have ended.
    fn decline(&self, p: &Parsed<'_>, leases: &LeaseTable) -> Reply {
        let expires = self.expires(p.now);
        self.give_back(p, leases, |key, address, identity| {
            LeaseChange::Bind(Lease {
                key: key.clone(),
                address,
                mac_source: identity.mac_source,
                host: identity.host.clone(),
                expires,
                declined: true,
            })
        })
    }

    /// Confirm (section 18.3.3): are the client's addresses on its current link?
    fn confirm(&self, p: &Parsed<'_>) -> Result<Reply, Ignored> {
        let subnet = p.subnet.ok_or(Ignored::NoSubnet)?;
        let ias = ia_nas(p.message.opts());
        let listed: Vec<Ipv6Addr> = ias.iter().flat_map(|ia| ia_addresses(ia)).collect();
        if listed.is_empty() {
            return Err(Ignored::NothingToConfirm);
        }
        let mut reply = Reply::new(MessageType::Reply);
        if listed.iter().all(|a| subnet.prefix.contains(a)) {
            reply
                .opts
                .insert(status(Status::Success, "all addresses on link"));
        } else {
            reply
                .opts
                .insert(status(Status::NotOnLink, "not on this link"));
        }
        Ok(reply)
    }

    /// Information-request (section 18.3.6): options only.
    fn information_request(&self) -> Reply {
        Reply::new(MessageType::Reply)
    }

    fn expires(&self, now: u64) -> u64 {
        now + u64::from(self.config.dhcp.valid_lifetime_secs)
    }

    /// One address per IA_NA from the client's link; `commit` records the bindings.
    fn assign(
        &self,
        p: &Parsed<'_>,
        leases: &LeaseTable,
        commit: bool,
        reply: &mut Reply,
    ) -> Result<(), Ignored> {
        let subnet = p.subnet.ok_or(Ignored::NoSubnet)?;
        let identity = &p.identity;
        let expires = self.expires(p.now);
        let mut taken: HashSet<Ipv6Addr> = HashSet::new();
        for ia in ia_nas(p.message.opts()) {
            let key = self.key(identity, ia.id);
            let chosen = self.choose_address(
                identity,
                &key,
                subnet,
                leases,
                (p.now, &taken),
                &mut reply.fixed_addresses_held,
            );
            match chosen {
                Some(address) => {
                    taken.insert(address);
                    reply.addresses.push(address);
                    reply.opts.insert(self.ia_with(ia.id, address));
                    if commit {
                        reply.changes.push(LeaseChange::Bind(Lease {
                            key,
                            address,
                            mac_source: identity.mac_source,
                            host: identity.host.clone(),
                            expires,
                            declined: false,
                        }));
                    }
                }
                None => reply.opts.insert(ia_status(
                    ia.id,
                    Status::NoAddrsAvail,
                    "no address left for this client",
                )),
            }
        }
        Ok(())
    }

    /// Renew and Rebind: each IA's binding, if it is still the client's and on this
    /// link, with new lifetimes; other addresses the client lists get zero lifetimes.
    fn extend(&self, p: &Parsed<'_>, leases: &LeaseTable) -> Reply {
        let mut reply = Reply::new(MessageType::Reply);
        let identity = &p.identity;
        let expires = self.expires(p.now);
        for ia in ia_nas(p.message.opts()) {
            let key = self.key(identity, ia.id);
            let bound = leases.by_key(&key).filter(|lease| {
                p.subnet.map_or(true, |s| s.prefix.contains(&lease.address))
                    && leases.is_free_for(&lease.address, &key, p.now)
            });
            let Some(lease) = bound else {
                reply.opts.insert(ia_status(
                    ia.id,
                    Status::NoBinding,
                    "no binding for this IA",
                ));
                continue;
            };
            reply.addresses.push(lease.address);
            let mut ia_reply = self.ia_with(ia.id, lease.address);
            // Addresses the client lists that are not its binding any more get zero
            // lifetimes (RFC 8415 section 18.3.4).
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
            reply.opts.insert(ia_reply);
            reply.changes.push(LeaseChange::Bind(Lease {
                expires,
                mac_source: identity.mac_source,
                host: identity.host.clone(),
                ..lease.clone()
            }));
        }
        reply
    }

    /// Release and Decline: `change` for each listed address the client holds;
    /// NoBinding for an IA that holds none of them.
    fn give_back(
        &self,
        p: &Parsed<'_>,
        leases: &LeaseTable,
        change: impl Fn(&LeaseKey, Ipv6Addr, &Identity) -> LeaseChange,
    ) -> Reply {
        let mut reply = Reply::new(MessageType::Reply);
        for ia in ia_nas(p.message.opts()) {
            let key = self.key(&p.identity, ia.id);
            let mut found = false;
            for address in ia_addresses(ia) {
                if leases.by_key(&key).is_some_and(|l| l.address == address) {
                    found = true;
                    reply.changes.push(change(&key, address, &p.identity));
                }
            }
            if !found {
                reply.opts.insert(ia_status(
                    ia.id,
                    Status::NoBinding,
                    "no binding for this IA",
                ));
            }
        }
        reply.opts.insert(status(Status::Success, "done"));
        reply
    }

    /// Identifiers first, then what the client asked for and its boot options; then
    /// the bytes, wrapped for the relays it came through.
    fn finish(&self, p: Parsed<'_>, mut reply: Reply) -> Result<Outcome, Ignored> {
        let kind = p.message.msg_type();
        let opts = p.message.opts();
        if !p.identity.duid.is_empty() {
            reply
                .opts
                .insert(DhcpOption::ClientId(p.identity.duid.clone()));
        }
        reply
            .opts
            .insert(DhcpOption::ServerId(self.server_duid.clone()));
        let asked: Vec<OptionCode> = match opts.get(OptionCode::ORO) {
            Some(DhcpOption::ORO(oro)) => oro.opts.clone(),
            _ => Vec::new(),
        };
        let client = class::classify(
            &Signals::from_options(opts),
            &self.config.boot.ipxe_user_classes,
        );
        let bootfile_url = if matches!(kind, MessageType::Release | MessageType::Decline) {
            None
        } else {
            self.add_requested_options(&asked, &client, &p.identity, &mut reply.opts)
        };

        let mut message = Message::new_with_id(reply.message_type, p.message.xid());
        message.set_opts(reply.opts);
        let mut bytes = Vec::with_capacity(256);
        message
            .encode(&mut Encoder::new(&mut bytes))
            .map_err(|e| Ignored::Malformed(WireError::Decode(e.to_string())))?;
        Ok(Outcome {
            message_type: kind,
            identity: p.identity,
            reply: wire::wrap_reply(&p.relays, bytes),
            changes: reply.changes,
            addresses: reply.addresses,
            client,
            bootfile_url,
            relay_hops: p.relays.len(),
            fixed_addresses_held: reply.fixed_addresses_held,
        })
    }

    /// Finds the client's MAC: DUID-LLT/LL, then relay option 79, then the EUI-64 of
    /// its link-local address (cross-checked with iPXE's IAID).
    fn identify(
        &self,
        message: &Message,
        relays: &[RelayLayer],
        source: Ipv6Addr,
        duid: Vec<u8>,
    ) -> Identity {
        let found = mac_from_duid(&duid)
            .map(|mac| (mac, MacSource::Duid))
            .or_else(|| {
                relays.iter().rev().find_map(|layer| {
                    layer
                        .client_link_layer
                        .as_ref()
                        .and_then(|(kind, address)| mac_from_link_layer(*kind, address))
                        .map(|mac| (mac, MacSource::RelayOption79))
                })
            })
            .or_else(|| {
                let peer = relays.last().map_or(source, |layer| layer.peer_address);
                if peer.segments()[0] & 0xffc0 != 0xfe80 {
                    return None;
                }
                let mac = Mac::from_eui64_address(&peer)?;
                let iaid_matches = message
                    .opts()
                    .get(OptionCode::IANA)
                    .is_some_and(|o| matches!(o, DhcpOption::IANA(ia) if ia.id == mac.ipxe_iaid()));
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
        let host = mac.and_then(|mac| self.host(&mac)).map(|h| h.name.clone());
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

    /// The host's fixed address first, then its current binding, then the pool.
    fn choose_address(
        &self,
        identity: &Identity,
        key: &LeaseKey,
        subnet: &Subnet,
        leases: &LeaseTable,
        (now, taken): (u64, &HashSet<Ipv6Addr>),
        held: &mut Vec<Ipv6Addr>,
    ) -> Option<Ipv6Addr> {
        if let Some(host) = identity.mac.and_then(|mac| self.host(&mac)) {
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
                held.push(address);
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

    /// DNS and domain search when the ORO asks for them; the boot options as
    /// [`class::ANSWERS`] says for this client. Returns the bootfile-url sent.
    fn add_requested_options(
        &self,
        asked: &[OptionCode],
        client: &BootClient,
        identity: &Identity,
        out: &mut DhcpOptions,
    ) -> Option<String> {
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
        let b = &self.config.boot;
        let script_url = match identity.mac {
            Some(mac) => b.script_url_for(&mac),
            None => b.ipxe_script_url.clone().filter(|u| !u.contains("{mac}")),
        };
        let boot = class::boot_options(client, asked, script_url, b);
        // Options 59, 60 and 16 go out as raw bodies: dhcproto 0.12 writes the number
        // of class items where option 16's length belongs.
        for (code, body) in [
            (
                OptionCode::OptBootfileUrl,
                boot.bootfile_url.clone().map(String::into_bytes),
            ),
            (OptionCode::OptBootfileParam, boot.bootfile_params),
            (OptionCode::VendorClass, boot.vendor_class),
        ] {
            if let Some(body) = body {
                out.insert(DhcpOption::Unknown(UnknownOption::new(code, body)));
            }
        }
        boot.bootfile_url
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

#[cfg(test)]
mod firmware_tests;

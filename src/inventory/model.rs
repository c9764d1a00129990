//! The inventory as data: hosts, their install flag and per-install token, their last
//! boot stage, and the rules every change must follow.
//!
//! [`Inventory`] is the whole fleet in memory. [`Inventory::apply`] checks one
//! [`Change`] against it (unique MAC, name and address, the current install token for
//! `/done`, the expected version for an edit), updates it and returns the row writes a
//! backend must persist ([`RowWrite`]). Both backends and every server's cache use this
//! one function, so a change means the same thing everywhere. Nothing here does I/O,
//! reads the clock or draws random numbers: time and tokens are passed in.
//!
//! Two kinds of rows make the inventory: a host's definition ([`StoredHost`]: its
//! [`HostSpec`] and a version) and its state ([`HostState`]: install flag, token, last
//! stage). Hosts listed in the config file (`[[hosts]]`, the seed) have their
//! definition there and only their state in the store; hosts added through the API or
//! `sixboot hosts add` have both in the store.

use core::net::{IpAddr, Ipv6Addr};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::progress::{self, Progress};
use crate::mac::Mac;

/// Milliseconds since the Unix epoch.
pub type UnixMillis = u64;

/// A boot without a new stage for this long is over: the next stage starts a new boot.
pub const BOOT_GAP_MILLIS: UnixMillis = 30 * 60 * 1000;

/// What an operator writes about a host: the definition, without run-time state.
///
/// New optional fields (an installer family, a BMC reference) are added here with
/// `#[serde(default, skip_serializing_if = …)]`: the file backend stores this struct as
/// JSON and the PostgreSQL backend as a `jsonb` column, so an added field needs no
/// schema migration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    pub mac: Mac,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Ipv6Addr>,
    /// Free-form template variables (`kernel_args`, `kernel`, `repo_url`, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, toml::Value>,
    /// The installer family its script and answer file come from; `None`: the config's
    /// default family (`http.installer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installer: Option<String>,
    /// How to reach its BMC (the password by file reference only). Boxed: most hosts
    /// have none, and every `Change` carries a `HostSpec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bmc: Option<Box<crate::bmc::BmcSpec>>,
}

impl HostSpec {
    /// The definition of a `[[hosts]]` entry.
    pub fn from_config(host: &crate::config::Host) -> HostSpec {
        HostSpec {
            mac: host.mac,
            name: host.name.clone(),
            address: host.address,
            vars: host.vars.clone(),
            installer: Some(host.installer.clone()),
            bmc: host.bmc.clone().map(Box::new),
        }
    }

    /// The same host as the config module spells it, for the templates. `install` is
    /// the flag the caller passes.
    pub fn to_config_host(&self, install: bool) -> crate::config::Host {
        crate::config::Host {
            mac: self.mac,
            name: self.name.clone(),
            address: self.address,
            install,
            // An unknown or empty family renders with the default one (`Catalog`).
            installer: self.installer.clone().unwrap_or_default(),
            vars: self.vars.clone(),
            bmc: self.bmc.as_deref().cloned(),
        }
    }
}

/// The last thing the boot servers did for a host, in boot order.
///
/// A boot runs RS → Solicit → Reply (the firmware's network), maybe TFTP (UEFI PXE
/// fetching iPXE), the script, the kernel and initrd, the installer's own network
/// set-up, the kickstart, `/done`; or it stops at the 404 that sends it to its disk.
/// [`crate::inventory::progress::place`] decides which boot a stage belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Nothing seen since the host was added.
    #[default]
    None,
    /// Its Router Solicitation was answered (RFC 4861 section 6.2.6): the firmware (or
    /// a system) brings its network up.
    Rs,
    /// Its DHCPv6 Solicit was answered with an Advertise (the detail names the boot
    /// client kind and architecture).
    Solicit,
    /// DHCPv6 gave it an address (a Reply to Request, or to a rapid-commit Solicit).
    Reply,
    /// A file was downloaded over TFTP (UEFI PXE fetching iPXE).
    Tftp,
    /// Its iPXE script was served.
    Script,
    /// The kernel its script names was served.
    Kernel,
    /// An initrd its script names was served.
    Initrd,
    /// Another boot file was served to its address.
    Files,
    /// Its kickstart was served.
    Kickstart,
    /// The installer reported success through `/done/{mac}/{token}`.
    Done,
    /// It asked for a script while not marked for install and got 404: it boots from disk.
    LocalDisk,
}

impl Stage {
    /// Every stage, in boot order, for metrics that list each one.
    pub const ALL: [Stage; 12] = [
        Stage::None,
        Stage::Rs,
        Stage::Solicit,
        Stage::Reply,
        Stage::Tftp,
        Stage::Script,
        Stage::Kernel,
        Stage::Initrd,
        Stage::Files,
        Stage::Kickstart,
        Stage::Done,
        Stage::LocalDisk,
    ];

    /// The kebab-case name used in JSON, SQL, metrics and tables.
    pub fn as_str(&self) -> &'static str {
        match self {
            Stage::None => "none",
            Stage::Rs => "rs",
            Stage::Solicit => "solicit",
            Stage::Reply => "reply",
            Stage::Tftp => "tftp",
            Stage::Script => "script",
            Stage::Kernel => "kernel",
            Stage::Initrd => "initrd",
            Stage::Files => "files",
            Stage::Kickstart => "kickstart",
            Stage::Done => "done",
            Stage::LocalDisk => "local-disk",
        }
    }

    /// What the stage means, for people (the status page, `hosts show`).
    pub fn describe(&self) -> &'static str {
        match self {
            Stage::None => "never seen",
            Stage::Rs => "RS answered",
            Stage::Solicit => "DHCPv6 Solicit",
            Stage::Reply => "address given",
            Stage::Tftp => "TFTP download",
            Stage::Script => "script served",
            Stage::Kernel => "kernel",
            Stage::Initrd => "initrd",
            Stage::Files => "file",
            Stage::Kickstart => "kickstart",
            Stage::Done => "/done",
            Stage::LocalDisk => "404 to disk",
        }
    }

    /// The stage named by [`Stage::as_str`].
    pub fn parse(text: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Position in boot order.
    pub(crate) fn rank(self) -> u8 {
        self as u8
    }
}

/// A host's run-time state, shared by every boot server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostState {
    /// Whether the next boot installs (its script and kickstart are served).
    pub install: bool,
    /// The per-install token the kickstart and `/done` URLs carry; `Some` exactly
    /// while `install` is on (a state written before tokens existed may lack it until
    /// the server issues one at start-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Bumped by every write of this row: the guard against lost updates.
    #[serde(default)]
    pub version: u64,
    #[serde(default)]
    pub stage: Stage,
    /// When `stage` was reached (ms since the epoch); 0 when never.
    #[serde(default)]
    pub stage_at: UnixMillis,
    /// What the stage was about (a file name, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The number of the host's current boot (1 for the first seen), see [`BootEvent`].
    #[serde(default)]
    pub boot: u64,
    /// Where the current boot is (its start, furthest stage, script fetches): what
    /// the next boot and the stuck and loop rules are decided from.
    #[serde(default, skip_serializing_if = "Progress::is_empty")]
    pub progress: Progress,
}

impl HostState {
    /// The state of a host nothing has been recorded for.
    pub fn initial(install: bool) -> HostState {
        HostState {
            install,
            token: None,
            version: 0,
            stage: Stage::None,
            stage_at: 0,
            detail: None,
            boot: 0,
            progress: Progress::default(),
        }
    }
}

/// A host definition as stored, with the version that guards edits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredHost {
    pub spec: HostSpec,
    pub version: u64,
}

/// Where a host's definition comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// The config file's `[[hosts]]`: edit it there; only its state is stored.
    Config,
    /// The store (API, `sixboot hosts add|import`, `inventory import`).
    Store,
}

/// One host as the servers see it: definition and state together.
#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    pub spec: HostSpec,
    pub origin: Origin,
    /// Version of the definition (0 for config hosts).
    pub version: u64,
    pub state: HostState,
}

/// What the store holds: every stored definition and every state row.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rows {
    #[serde(default)]
    pub hosts: BTreeMap<Mac, StoredHost>,
    #[serde(default)]
    pub states: BTreeMap<Mac, HostState>,
}

/// One row to persist, with the version the row must still have (`None`: it must not
/// exist yet). A backend that finds another version refuses the whole commit with
/// [`crate::inventory::StoreError::Conflict`]; the caller reloads and applies again.
#[derive(Debug, Clone, PartialEq)]
pub enum RowWrite {
    PutHost {
        host: StoredHost,
        expected: Option<u64>,
    },
    DeleteHost {
        mac: Mac,
        expected: u64,
    },
    PutState {
        mac: Mac,
        state: HostState,
        expected: Option<u64>,
    },
    DeleteState {
        mac: Mac,
        expected: u64,
    },
}

/// A stage a server saw, before the inventory places it in a boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub mac: Mac,
    pub stage: Stage,
    pub detail: Option<String>,
    pub at: UnixMillis,
    /// The client's (or relay's) address.
    pub peer: Option<IpAddr>,
}

/// One stage of one boot of one host, as recorded in the event log.
///
/// `id` is random (made by the recording server), so replaying a queued event after an
/// outage never stores it twice. `boot` numbers the host's boots
/// ([`crate::inventory::progress::starts_new_boot`] says where one starts: after
/// `/done`, after [`BOOT_GAP_MILLIS`] of silence, when the firmware starts over).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootEvent {
    pub id: String,
    pub mac: Mac,
    pub boot: u64,
    pub stage: Stage,
    pub at: UnixMillis,
    /// The server that saw it (`[inventory] server_name`, default the host name).
    pub server: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A change to the inventory. Random values (install tokens) are made by the caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// Adds a host to the store; `token` must be `Some` when `install` is on.
    Create {
        spec: HostSpec,
        install: bool,
        token: Option<String>,
    },
    /// Replaces a stored host's definition (its MAC stays); `expected_version` is the
    /// version the editor read (`None`: whatever it is now).
    Update {
        spec: HostSpec,
        expected_version: Option<u64>,
    },
    /// Removes a stored host, its state and (in the backend) its events.
    Remove {
        mac: Mac,
        expected_version: Option<u64>,
    },
    /// Turns the install flag on (with a new token) or off.
    SetInstall {
        mac: Mac,
        install: bool,
        token: Option<String>,
    },
    /// `/done/{mac}/{token}`: the install finished; allowed only with the current token.
    Done { mac: Mac, token: String },
    /// A boot stage was seen; recorded only when stage or detail changes.
    Stage(Observation),
}

impl Change {
    /// The host the change is about.
    pub fn mac(&self) -> Mac {
        match self {
            Change::Create { spec, .. } | Change::Update { spec, .. } => spec.mac,
            Change::Remove { mac, .. }
            | Change::SetInstall { mac, .. }
            | Change::Done { mac, .. } => *mac,
            Change::Stage(o) => o.mac,
        }
    }
}

/// What an applied change did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Applied {
    /// The rows to persist, in order.
    pub writes: Vec<RowWrite>,
    /// The host after the change (`None` after `Remove`).
    pub host: Option<Host>,
    /// For `Stage`: whether it was new (so an event is recorded) and the boot number.
    pub new_stage: Option<u64>,
    /// For `SetInstall`: the flag before.
    pub was_install: Option<bool>,
}

/// Why a change was refused. Each names the field at fault, for the API's JSON error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{field}: {message}")]
    Conflict {
        field: &'static str,
        message: String,
    },
    #[error("no host with MAC {0}")]
    UnknownHost(Mac),
    #[error("{0} is defined in the config file's [[hosts]]; edit it there")]
    ConfigHost(Mac),
    #[error("host {mac} has version {actual}, not {expected}: it changed since you read it")]
    Version {
        mac: Mac,
        expected: u64,
        actual: u64,
    },
    #[error("{0} is not marked for install")]
    NotInstalling(Mac),
    #[error("wrong install token for {0}")]
    WrongToken(Mac),
}

/// Checks a definition on its own (not against other hosts): a name, an address
/// inside one of `subnets` when any are configured.
pub fn check_spec(spec: &HostSpec, subnets: &[crate::config::Prefix]) -> Result<(), ChangeError> {
    let name = spec.name.as_str();
    if name.is_empty() || name.len() > 253 {
        return Err(ChangeError::Invalid {
            field: "name",
            message: "must be 1 to 253 characters".into(),
        });
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(ChangeError::Invalid {
            field: "name",
            message: format!("`{name}` may hold only letters, digits, `-`, `_` and `.`"),
        });
    }
    if let Some(address) = spec.address {
        if address.is_unspecified() || address.is_multicast() || address.is_loopback() {
            return Err(ChangeError::Invalid {
                field: "address",
                message: format!("{address} cannot be a host's address"),
            });
        }
        if !subnets.is_empty() && !subnets.iter().any(|p| p.contains(&address)) {
            return Err(ChangeError::Invalid {
                field: "address",
                message: format!("{address} is in none of the dhcp.subnets"),
            });
        }
    }
    if let Some(bmc) = &spec.bmc {
        crate::bmc::BmcSpec::check_url(&bmc.url).map_err(|message| ChangeError::Invalid {
            field: "bmc.url",
            message,
        })?;
    }
    Ok(())
}

/// The whole fleet in memory, with indexes by name and address.
///
/// Cloning is cheap enough to publish a fresh snapshot per batch of changes: hosts are
/// behind `Arc`, so a clone copies pointers, not records.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    hosts: HashMap<Mac, Arc<Host>>,
    by_name: HashMap<Arc<str>, Mac>,
    by_address: HashMap<Ipv6Addr, Mac>,
    /// Config hosts (the seed), kept so that a stored row can fall back to them.
    seed: Arc<HashMap<Mac, (HostSpec, bool)>>,
    /// States stored for MACs nobody defines (a host removed from the config file):
    /// kept so that they come back if the host does.
    orphan_states: HashMap<Mac, HostState>,
    /// Definitions in the store shadowed by a config host with the same MAC.
    shadowed: Vec<Mac>,
    /// Changes whenever a definition (MAC, name, address, vars) may have changed, so
    /// that users of definitions only (the DHCPv6 engine) rebuild only then.
    generation: u64,
}

impl Inventory {
    /// The inventory of `seed` (config hosts with their `install` flag as the initial
    /// value) over the store's `rows`. A stored definition whose MAC a config host also
    /// has is shadowed by the config host ([`Inventory::shadowed`]).
    pub fn new(seed: Vec<(HostSpec, bool)>, rows: Rows) -> Inventory {
        let seed = seed
            .into_iter()
            .map(|(spec, install)| (spec.mac, (spec, install)))
            .collect();
        Inventory::build(Arc::new(seed), rows)
    }

    /// The inventory of the same config hosts over other rows (the store changed).
    pub fn with_rows(&self, rows: Rows) -> Inventory {
        let mut inventory = Inventory::build(self.seed.clone(), rows);
        inventory.generation = self.generation + 1;
        inventory
    }

    /// See the field: equal generations of one inventory's successors have equal
    /// definitions.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Every host as the config module spells it (definition and current install
    /// flag), for code written against `config.hosts`.
    pub fn config_hosts(&self) -> Vec<crate::config::Host> {
        let mut hosts: Vec<crate::config::Host> = self
            .iter()
            .map(|h| h.spec.to_config_host(h.state.install))
            .collect();
        hosts.sort_by_key(|h| h.mac);
        hosts
    }

    fn build(seed: Arc<HashMap<Mac, (HostSpec, bool)>>, rows: Rows) -> Inventory {
        let mut inventory = Inventory {
            seed,
            generation: 1,
            ..Inventory::default()
        };
        let macs: Vec<Mac> = inventory.seed.keys().copied().collect();
        for mac in macs {
            let (spec, install) = inventory.seed[&mac].clone();
            let state = rows
                .states
                .get(&mac)
                .cloned()
                .unwrap_or_else(|| HostState::initial(install));
            if rows.hosts.contains_key(&mac) {
                inventory.shadowed.push(mac);
            }
            inventory.insert(Host {
                spec,
                origin: Origin::Config,
                version: 0,
                state,
            });
        }
        for (mac, stored) in rows.hosts {
            if inventory.hosts.contains_key(&mac) {
                continue;
            }
            let state = rows
                .states
                .get(&mac)
                .cloned()
                .unwrap_or_else(|| HostState::initial(false));
            inventory.insert(Host {
                spec: stored.spec,
                origin: Origin::Store,
                version: stored.version,
                state,
            });
        }
        for (mac, state) in rows.states {
            if !inventory.hosts.contains_key(&mac) {
                inventory.orphan_states.insert(mac, state);
            }
        }
        inventory.shadowed.sort();
        inventory
    }

    /// Stored definitions hidden by a config host with the same MAC.
    pub fn shadowed(&self) -> &[Mac] {
        &self.shadowed
    }

    /// The host with this MAC.
    pub fn get(&self, mac: &Mac) -> Option<&Host> {
        self.hosts.get(mac).map(|h| &**h)
    }

    /// The host with this MAC as the shared record: a new `Arc` after every change, so
    /// `Arc::ptr_eq` tells whether the host changed.
    pub fn get_arc(&self, mac: &Mac) -> Option<&Arc<Host>> {
        self.hosts.get(mac)
    }

    /// The host with this name.
    pub fn by_name(&self, name: &str) -> Option<&Host> {
        self.by_name.get(name).and_then(|mac| self.get(mac))
    }

    /// The host whose fixed address this is.
    pub fn by_address(&self, address: &Ipv6Addr) -> Option<&Host> {
        self.by_address.get(address).and_then(|mac| self.get(mac))
    }

    /// A host by MAC (any spelling) or by name.
    pub fn find(&self, mac_or_name: &str) -> Option<&Host> {
        match mac_or_name.parse::<Mac>() {
            Ok(mac) => self.get(&mac),
            Err(_) => self.by_name(mac_or_name),
        }
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Every host, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Host> {
        self.hosts.values().map(|h| &**h)
    }

    /// Every host sorted by name (byte order).
    pub fn sorted_by_name(&self) -> Vec<&Host> {
        // Each name's first bytes sit next to its host pointer, so that most
        // comparisons never reach the names scattered on the heap (at 100,000 hosts
        // the plain sort took ~0.5 s of cache misses).
        fn prefix(name: &str) -> [u8; 24] {
            let mut key = [0; 24];
            let n = name.len().min(24);
            key[..n].copy_from_slice(&name.as_bytes()[..n]);
            key
        }
        let mut keyed: Vec<([u8; 24], &Host)> =
            self.iter().map(|h| (prefix(&h.spec.name), h)).collect();
        keyed.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| a.1.spec.name.cmp(&b.1.spec.name))
                .then_with(|| a.1.spec.mac.cmp(&b.1.spec.mac))
        });
        keyed.into_iter().map(|(_, h)| h).collect()
    }

    /// The rows the store should hold for this inventory (what `inventory export`
    /// writes): stored definitions, and every state that differs from the initial one.
    pub fn rows(&self) -> Rows {
        let mut rows = Rows::default();
        for host in self.hosts.values() {
            if host.origin == Origin::Store {
                rows.hosts.insert(
                    host.spec.mac,
                    StoredHost {
                        spec: host.spec.clone(),
                        version: host.version,
                    },
                );
            }
            rows.states.insert(host.spec.mac, host.state.clone());
        }
        for (mac, state) in &self.orphan_states {
            rows.states.insert(*mac, state.clone());
        }
        rows
    }

    /// Hosts whose install flag is on but that have no token yet (config hosts marked
    /// `install = true` that never booted, or states from before tokens): the server
    /// issues one with [`Change::SetInstall`] at start-up.
    pub fn missing_tokens(&self) -> Vec<Mac> {
        let mut macs: Vec<Mac> = self
            .hosts
            .values()
            .filter(|h| h.state.install && h.state.token.is_none())
            .map(|h| h.spec.mac)
            .collect();
        macs.sort();
        macs
    }

    fn insert(&mut self, host: Host) {
        let mac = host.spec.mac;
        if !self
            .hosts
            .get(&mac)
            .is_some_and(|old| old.spec == host.spec)
        {
            self.generation += 1;
        }
        self.remove_indexes(&mac);
        self.by_name.insert(Arc::from(host.spec.name.as_str()), mac);
        if let Some(address) = host.spec.address {
            self.by_address.insert(address, mac);
        }
        self.hosts.insert(mac, Arc::new(host));
    }

    fn remove_indexes(&mut self, mac: &Mac) {
        if let Some(old) = self.hosts.get(mac) {
            if self.by_name.get(old.spec.name.as_str()) == Some(mac) {
                self.by_name.remove(old.spec.name.as_str());
            }
            if let Some(address) = old.spec.address {
                if self.by_address.get(&address) == Some(mac) {
                    self.by_address.remove(&address);
                }
            }
        }
    }

    fn state_of(&self, mac: &Mac) -> Result<&Host, ChangeError> {
        self.get(mac).ok_or(ChangeError::UnknownHost(*mac))
    }

    /// Checks that `spec`'s name and address are free (but for `mac` itself).
    fn check_unique(&self, spec: &HostSpec) -> Result<(), ChangeError> {
        if let Some(other) = self.by_name(&spec.name) {
            if other.spec.mac != spec.mac {
                return Err(ChangeError::Conflict {
                    field: "name",
                    message: format!("`{}` is already the name of {}", spec.name, other.spec.mac),
                });
            }
        }
        if let Some(address) = spec.address {
            if let Some(other) = self.by_address(&address) {
                if other.spec.mac != spec.mac {
                    return Err(ChangeError::Conflict {
                        field: "address",
                        message: format!("{address} is already the address of {}", other.spec.name),
                    });
                }
            }
        }
        Ok(())
    }

    /// Applies one change at `now` (ms since the epoch): checks it, updates the
    /// inventory and returns the rows to persist. On `Err` nothing changed.
    ///
    /// Rules: MACs, names and addresses are unique; config hosts' definitions are
    /// read-only; `Done` needs the current token and turns the flag off (the next boot
    /// goes to disk); `SetInstall` on needs a new token; `Stage` writes only when the
    /// stage or its detail changes, and places it in a boot ([`BootEvent`]).
    pub fn apply(&mut self, change: &Change, now: UnixMillis) -> Result<Applied, ChangeError> {
        match change {
            Change::Create {
                spec,
                install,
                token,
            } => {
                if self.hosts.contains_key(&spec.mac) {
                    return Err(ChangeError::Conflict {
                        field: "mac",
                        message: format!("a host with MAC {} already exists", spec.mac),
                    });
                }
                self.check_unique(spec)?;
                check_token(*install, token)?;
                let stored = StoredHost {
                    spec: spec.clone(),
                    version: 1,
                };
                let previous_state = self.orphan_states.remove(&spec.mac);
                let state = HostState {
                    install: *install,
                    token: token.clone(),
                    version: previous_state.as_ref().map_or(1, |s| s.version + 1),
                    ..HostState::initial(*install)
                };
                let host = Host {
                    spec: spec.clone(),
                    origin: Origin::Store,
                    version: 1,
                    state: state.clone(),
                };
                self.insert(host.clone());
                Ok(Applied {
                    writes: vec![
                        RowWrite::PutHost {
                            host: stored,
                            expected: None,
                        },
                        RowWrite::PutState {
                            mac: spec.mac,
                            state,
                            expected: previous_state.map(|s| s.version),
                        },
                    ],
                    host: Some(host),
                    ..Applied::default()
                })
            }
            Change::Update {
                spec,
                expected_version,
            } => {
                let current = self.state_of(&spec.mac)?.clone();
                if current.origin == Origin::Config {
                    return Err(ChangeError::ConfigHost(spec.mac));
                }
                check_version(spec.mac, *expected_version, current.version)?;
                self.check_unique(spec)?;
                let host = Host {
                    spec: spec.clone(),
                    version: current.version + 1,
                    ..current.clone()
                };
                self.insert(host.clone());
                Ok(Applied {
                    writes: vec![RowWrite::PutHost {
                        host: StoredHost {
                            spec: spec.clone(),
                            version: host.version,
                        },
                        expected: Some(current.version),
                    }],
                    host: Some(host),
                    ..Applied::default()
                })
            }
            Change::Remove {
                mac,
                expected_version,
            } => {
                let current = self.state_of(mac)?.clone();
                if current.origin == Origin::Config {
                    return Err(ChangeError::ConfigHost(*mac));
                }
                check_version(*mac, *expected_version, current.version)?;
                self.remove_indexes(mac);
                self.hosts.remove(mac);
                self.generation += 1;
                Ok(Applied {
                    writes: vec![
                        RowWrite::DeleteHost {
                            mac: *mac,
                            expected: current.version,
                        },
                        RowWrite::DeleteState {
                            mac: *mac,
                            expected: current.state.version,
                        },
                    ],
                    ..Applied::default()
                })
            }
            Change::SetInstall {
                mac,
                install,
                token,
            } => {
                check_token(*install, token)?;
                let current = self.state_of(mac)?.clone();
                let was = current.state.install;
                let state = HostState {
                    install: *install,
                    token: token.clone(),
                    version: current.state.version + 1,
                    // A new install attempt: earlier script fetches are no loop.
                    progress: if *install && !was {
                        current.state.progress.without_scripts()
                    } else {
                        current.state.progress
                    },
                    ..current.state.clone()
                };
                let applied = self.put_state(&current, state);
                Ok(Applied {
                    was_install: Some(was),
                    ..applied
                })
            }
            Change::Done { mac, token } => {
                let current = self.state_of(mac)?.clone();
                if !current.state.install {
                    return Err(ChangeError::NotInstalling(*mac));
                }
                if current.state.token.as_deref() != Some(token.as_str()) {
                    return Err(ChangeError::WrongToken(*mac));
                }
                let (boot, progress) = progress::place(&current.state, Stage::Done, now);
                let state = HostState {
                    install: false,
                    token: None,
                    version: current.state.version + 1,
                    stage: Stage::Done,
                    stage_at: now,
                    detail: None,
                    boot,
                    progress: progress.without_scripts(),
                };
                let applied = self.put_state(&current, state);
                Ok(Applied {
                    new_stage: Some(boot),
                    ..applied
                })
            }
            Change::Stage(observation) => {
                let current = self.state_of(&observation.mac)?.clone();
                // A script fetched again is news (a new boot, maybe a loop); any other
                // repeat of the current stage is not.
                if current.state.stage == observation.stage
                    && current.state.detail == observation.detail
                    && observation.stage != Stage::Script
                {
                    return Ok(Applied {
                        host: Some(current),
                        ..Applied::default()
                    });
                }
                let (boot, progress) =
                    progress::place(&current.state, observation.stage, observation.at);
                let state = HostState {
                    version: current.state.version + 1,
                    stage: observation.stage,
                    stage_at: observation.at,
                    detail: observation.detail.clone(),
                    boot,
                    progress,
                    ..current.state.clone()
                };
                let applied = self.put_state(&current, state);
                Ok(Applied {
                    new_stage: Some(boot),
                    ..applied
                })
            }
        }
    }

    fn put_state(&mut self, current: &Host, state: HostState) -> Applied {
        let host = Host {
            state: state.clone(),
            ..current.clone()
        };
        self.insert(host.clone());
        Applied {
            writes: vec![RowWrite::PutState {
                mac: current.spec.mac,
                expected: (current.state.version > 0).then_some(current.state.version),
                state,
            }],
            host: Some(host),
            ..Applied::default()
        }
    }

    /// Replaces the rows of one host with what the store holds now (another server's
    /// change, seen through the store's change feed). `None` rows remove them.
    pub fn replace(&mut self, mac: Mac, stored: Option<StoredHost>, state: Option<HostState>) {
        let seeded = self.seed.get(&mac).cloned();
        match (seeded, stored) {
            (Some((spec, install)), _) => {
                self.insert(Host {
                    spec,
                    origin: Origin::Config,
                    version: 0,
                    state: state.unwrap_or_else(|| HostState::initial(install)),
                });
            }
            (None, Some(stored)) => {
                self.orphan_states.remove(&mac);
                self.insert(Host {
                    spec: stored.spec,
                    origin: Origin::Store,
                    version: stored.version,
                    state: state.unwrap_or_else(|| HostState::initial(false)),
                });
            }
            (None, None) => {
                self.remove_indexes(&mac);
                self.hosts.remove(&mac);
                self.generation += 1;
                match state {
                    Some(state) => self.orphan_states.insert(mac, state),
                    None => self.orphan_states.remove(&mac),
                };
            }
        }
    }
}

fn check_token(install: bool, token: &Option<String>) -> Result<(), ChangeError> {
    match (install, token) {
        (true, None) => Err(ChangeError::Invalid {
            field: "token",
            message: "turning install on needs a new install token".into(),
        }),
        (false, Some(_)) => Err(ChangeError::Invalid {
            field: "token",
            message: "a host not marked for install has no install token".into(),
        }),
        (true, Some(token)) if token.len() < 16 => Err(ChangeError::Invalid {
            field: "token",
            message: "an install token has at least 16 characters".into(),
        }),
        _ => Ok(()),
    }
}

fn check_version(mac: Mac, expected: Option<u64>, actual: u64) -> Result<(), ChangeError> {
    match expected {
        Some(expected) if expected != actual => Err(ChangeError::Version {
            mac,
            expected,
            actual,
        }),
        _ => Ok(()),
    }
}

/// Keeps the events of the last `max_boots` boots of each host (events in any order;
/// the result is ordered by host, boot and time, ties in their given order). The file backend's bound on disk.
pub fn retain_recent_boots(events: Vec<BootEvent>, max_boots: u64) -> Vec<BootEvent> {
    let mut last: HashMap<Mac, u64> = HashMap::new();
    for event in &events {
        let entry = last.entry(event.mac).or_insert(0);
        *entry = (*entry).max(event.boot);
    }
    let mut kept: Vec<BootEvent> = events
        .into_iter()
        .filter(|e| e.boot + max_boots > last[&e.mac])
        .collect();
    kept.sort_by_key(|e| (e.mac, e.boot, e.at));
    kept
}

#[cfg(test)]
mod tests;

//! DHCPv6 leases: the in-memory table the engine reads, and the log format the server
//! writes before it acknowledges anything. Pure: no files, no clock (time comes in as
//! Unix seconds); the files are [`store`]'s.
//!
//! The log is JSON lines, one [`LeaseChange`] per line ([`encode_changes`]); replaying
//! it through [`LeaseTable::apply`] gives back the table ([`replay`]). A torn last line
//! (a crash mid-append, never acknowledged) is reported, not an error; a bad line
//! before it is an error.

use core::net::Ipv6Addr;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::mac::Mac;

pub mod store;

// The store's items stay reachable as `leases::…`, where they were before the split.
pub use store::{
    load_or_create_server_duid, read_leases, LeaseError, LeaseStore, LEASE_FILE, LOCK_FILE,
    SERVER_DUID_FILE,
};

/// What makes two leases different: two machines with the same DUID (an all-zero
/// DUID-UUID from a blank SMBIOS) but different MACs never share a lease.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LeaseKey {
    #[serde(with = "hex_bytes")]
    pub duid: Vec<u8>,
    pub iaid: u32,
    pub mac: Option<Mac>,
}

/// Where the engine learnt a client's MAC, in the order it tries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MacSource {
    /// DUID-LLT or DUID-LL (RFC 8415 sections 11.2, 11.4).
    Duid,
    /// Client link-layer address option 79 from a relay (RFC 6939).
    RelayOption79,
    /// EUI-64 link-local source address whose MAC also gives the IA_NA's IAID under
    /// iPXE's CRC-32: the way an iPXE client with a DUID-UUID is recognised.
    Eui64Iaid,
    /// EUI-64 link-local source address, IAID not matching iPXE's.
    Eui64,
}

/// One address bound to one client IA (or declined by a client).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub key: LeaseKey,
    pub address: Ipv6Addr,
    pub mac_source: Option<MacSource>,
    /// The configured host's name, when the MAC is known to the config.
    pub host: Option<String>,
    /// Unix seconds at which the valid lifetime ends.
    pub expires: u64,
    /// A client said the address is in use by someone else (Decline): nobody gets it
    /// until `expires`.
    #[serde(default)]
    pub declined: bool,
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LeaseChange {
    Bind(Lease),
    Release { key: LeaseKey, address: Ipv6Addr },
}

/// The current leases, indexed by address and by client IA.
#[derive(Debug, Clone, Default)]
pub struct LeaseTable {
    by_address: HashMap<Ipv6Addr, Lease>,
    by_key: HashMap<LeaseKey, Ipv6Addr>,
}

impl LeaseTable {
    /// The lease on this address, expired or not.
    pub fn by_address(&self, address: &Ipv6Addr) -> Option<&Lease> {
        self.by_address.get(address)
    }

    /// The lease this client IA holds, expired or not.
    pub fn by_key(&self, key: &LeaseKey) -> Option<&Lease> {
        self.by_key
            .get(key)
            .and_then(|address| self.by_address.get(address))
            .filter(|lease| lease.key == *key && !lease.declined)
    }

    /// Whether `key` could take `address` at `now`: nobody holds it, its lease
    /// expired, or `key` already holds it.
    pub fn is_free_for(&self, address: &Ipv6Addr, key: &LeaseKey, now: u64) -> bool {
        match self.by_address.get(address) {
            None => true,
            Some(lease) => lease.expires <= now || (!lease.declined && lease.key == *key),
        }
    }

    pub fn len(&self) -> usize {
        self.by_address.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_address.is_empty()
    }

    /// Every lease, in no particular order (no copy, no sort: for counting).
    pub fn iter(&self) -> impl Iterator<Item = &Lease> {
        self.by_address.values()
    }

    /// Every lease, sorted by address.
    pub fn leases(&self) -> Vec<&Lease> {
        let mut all: Vec<&Lease> = self.by_address.values().collect();
        all.sort_by_key(|lease| lease.address);
        all
    }

    /// Applies one change. Replaying the log through this gives back the table.
    pub fn apply(&mut self, change: &LeaseChange) {
        match change {
            LeaseChange::Bind(lease) => {
                if !lease.declined {
                    if let Some(old) = self.by_key.insert(lease.key.clone(), lease.address) {
                        if old != lease.address
                            && self
                                .by_address
                                .get(&old)
                                .is_some_and(|l| l.key == lease.key)
                        {
                            self.by_address.remove(&old);
                        }
                    }
                }
                if let Some(previous) = self.by_address.insert(lease.address, lease.clone()) {
                    if previous.key != lease.key
                        && self.by_key.get(&previous.key) == Some(&lease.address)
                    {
                        self.by_key.remove(&previous.key);
                    }
                }
            }
            LeaseChange::Release { key, address } => {
                if self.by_address.get(address).is_some_and(|l| l.key == *key) {
                    self.by_address.remove(address);
                }
                if self.by_key.get(key) == Some(address) {
                    self.by_key.remove(key);
                }
            }
        }
    }

    /// Drops leases that ended before `now`; they are free either way, this only
    /// bounds memory.
    pub fn expire(&mut self, now: u64) {
        let gone: Vec<Lease> = self
            .by_address
            .values()
            .filter(|lease| lease.expires <= now)
            .cloned()
            .collect();
        for lease in gone {
            self.apply(&LeaseChange::Release {
                key: lease.key,
                address: lease.address,
            });
        }
    }
}

/// Appends the log lines for `changes` to `out` (what [`LeaseStore::append`] queues).
pub fn encode_changes(out: &mut Vec<u8>, changes: &[LeaseChange]) {
    for change in changes {
        // Serializing plain structs into a Vec cannot fail.
        if serde_json::to_writer(&mut *out, change).is_ok() {
            out.push(b'\n');
        }
    }
}

/// The log of a table: one `Bind` line per lease, by address (what the store writes when
/// it compacts the log on open).
pub fn compacted_log(table: &LeaseTable) -> Vec<u8> {
    let binds: Vec<LeaseChange> = table
        .leases()
        .into_iter()
        .map(|lease| LeaseChange::Bind(lease.clone()))
        .collect();
    let mut out = Vec::new();
    encode_changes(&mut out, &binds);
    out
}

/// A log replayed by [`replay`].
#[derive(Debug, Clone, Default)]
pub struct Replayed {
    pub table: LeaseTable,
    /// The 1-based number of a torn last line that was dropped (a crash while
    /// appending; its changes were never acknowledged).
    pub torn_last_line: Option<usize>,
}

/// A line before the last that is not a [`LeaseChange`]: the log is damaged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: not a lease record ({message})")]
pub struct ReplayError {
    /// 1-based.
    pub line: usize,
    pub message: String,
}

/// Replays a log's text (blank lines ignored) into a table.
pub fn replay(text: &str) -> Result<Replayed, ReplayError> {
    let mut replayed = Replayed::default();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<LeaseChange>(line) {
            Ok(change) => replayed.table.apply(&change),
            Err(_) if i + 1 == lines.len() => replayed.torn_last_line = Some(i + 1),
            Err(err) => {
                return Err(ReplayError {
                    line: i + 1,
                    message: err.to_string(),
                })
            }
        }
    }
    Ok(replayed)
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lease for tests here and in `store`.
    pub(super) fn lease(duid: u8, mac: Option<u8>, address: &str, expires: u64) -> Lease {
        Lease {
            key: LeaseKey {
                duid: vec![0, 4, duid],
                iaid: 1,
                mac: mac.map(|m| Mac([2, 0, 0, 0, 0, m])),
            },
            address: address.parse().unwrap(),
            mac_source: Some(MacSource::Duid),
            host: None,
            expires,
            declined: false,
        }
    }

    #[test]
    fn rebinding_a_key_frees_its_old_address() {
        let mut table = LeaseTable::default();
        let a = lease(1, Some(1), "2001:db8::10", 100);
        let mut b = a.clone();
        b.address = "2001:db8::11".parse().unwrap();
        table.apply(&LeaseChange::Bind(a.clone()));
        table.apply(&LeaseChange::Bind(b.clone()));
        assert_eq!(table.len(), 1);
        assert!(table.by_address(&a.address).is_none());
        assert_eq!(table.by_key(&a.key), Some(&b));
    }

    #[test]
    fn same_duid_with_different_macs_are_different_leases() {
        let mut table = LeaseTable::default();
        let a = lease(0, Some(1), "2001:db8::10", 100);
        let b = lease(0, Some(2), "2001:db8::11", 100);
        table.apply(&LeaseChange::Bind(a.clone()));
        table.apply(&LeaseChange::Bind(b.clone()));
        assert_eq!(table.len(), 2);
        assert!(!table.is_free_for(&a.address, &b.key, 50));
        assert!(table.is_free_for(&a.address, &b.key, 100));
    }

    #[test]
    fn replay_gives_back_the_table_and_reports_a_torn_last_line() {
        let a = lease(1, Some(1), "2001:db8::10", 1_000);
        let b = lease(2, Some(2), "2001:db8::11", 1_000);
        let mut log = Vec::new();
        encode_changes(
            &mut log,
            &[
                LeaseChange::Bind(a.clone()),
                LeaseChange::Bind(b.clone()),
                LeaseChange::Release {
                    key: b.key.clone(),
                    address: b.address,
                },
            ],
        );
        let text = String::from_utf8(log).unwrap();
        let replayed = replay(&text).unwrap();
        assert_eq!(replayed.table.leases(), vec![&a]);
        assert_eq!(replayed.torn_last_line, None);
        let torn = replay(&format!("{text}\n{{\"bind\":{{\"key\":")).unwrap();
        assert_eq!(torn.table.leases(), vec![&a]);
        assert_eq!(torn.torn_last_line, Some(5));
        let compacted = String::from_utf8(compacted_log(&replayed.table)).unwrap();
        assert_eq!(replay(&compacted).unwrap().table.leases(), vec![&a]);
    }

    #[test]
    fn replay_refuses_a_bad_line_before_the_last() {
        let err = replay("garbage\n{}\n").unwrap_err();
        assert_eq!(err.line, 1);
    }
}

//! Dynamic Configuration, the file side: re-read `spread.conf`, decide
//! whether this daemon stays, and build what the engines adopt.
//!
//! As the original: a file that does not parse is refused (the error says
//! `file:line:col`) and the running configuration stays; a daemon no longer
//! in the file, or whose own name, interfaces, port or broadcast address
//! changed, exits; an entry present in both files (by address) with another
//! name, interfaces or broadcast address asks for the singleton partition.

use std::fmt;
use std::path::PathBuf;

use crate::configuration::{Configuration, DaemonEntry, DaemonRef};
use crate::engine::EngineConfig;
use crate::monitor::MonitorConfig;
use crate::network::RingAddresses;
use crate::ring::RingParams;

/// What a reload gives the engines and the shell.
pub struct Reloaded {
    pub engine: EngineConfig,
    pub ring: RingParams,
    pub addresses: RingAddresses,
    pub monitor: MonitorConfig,
    pub singleton: bool,
    pub added: Vec<DaemonEntry>,
    pub removed: Vec<DaemonEntry>,
}

/// Why a reload did not happen.
#[derive(Debug)]
pub enum ReloadError {
    /// The file cannot be used; the running configuration stays.
    Refused(String),
    /// This daemon has no place in the new file: it exits (as the original).
    Exit(String),
}

impl fmt::Display for ReloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReloadError::Refused(m) => write!(f, "reload refused, keeping the running configuration: {m}"),
            ReloadError::Exit(m) => write!(f, "reload: {m}"),
        }
    }
}

/// The file a daemon was started with and the configuration it runs.
pub struct Reloader {
    path: PathBuf,
    proc_name: Option<String>,
    current: Configuration,
    me: DaemonRef,
}

impl Reloader {
    pub fn new(path: PathBuf, proc_name: Option<String>, current: Configuration, me: DaemonRef) -> Reloader {
        Reloader {
            path,
            proc_name,
            current,
            me,
        }
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Re-reads the file; on success the new configuration becomes the
    /// running one.
    pub fn reload(&mut self) -> Result<Reloaded, ReloadError> {
        // As the original: the path the daemon was started with, else
        // ./spread.conf (after a chroot into RuntimeDir the first is gone).
        let local = PathBuf::from("./spread.conf");
        let path = if !self.path.is_file() && local.is_file() {
            log::info!(
                "reload: {} not found, using {}",
                self.path.display(),
                local.display()
            );
            &local
        } else {
            &self.path
        };
        let new = Configuration::load(path).map_err(|e| ReloadError::Refused(e.to_string()))?;
        let old_entry = self
            .current
            .daemon(self.me)
            .cloned()
            .ok_or_else(|| ReloadError::Refused("own entry missing".into()))?;
        let me = match &self.proc_name {
            Some(name) => new.daemon_refs().find(|(_, d)| &d.name == name),
            None => new.daemon_refs().find(|(_, d)| d.ip == old_entry.ip),
        }
        .map(|(r, _)| r)
        .ok_or_else(|| {
            ReloadError::Exit(format!(
                "My proc {} is not in configuration {}",
                self.proc_name.as_deref().unwrap_or(&old_entry.ip.to_string()),
                self.path.display()
            ))
        })?;
        let entry = new
            .daemon(me)
            .cloned()
            .ok_or_else(|| ReloadError::Refused("own entry missing".into()))?;
        let seg = |c: &Configuration, r: DaemonRef| c.segments.get(r.segment).map(|s| (s.address, s.port));
        if entry != old_entry || seg(&new, me) != seg(&self.current, self.me) {
            return Err(ReloadError::Exit(format!(
                "my own entry ({}, {}) changed: the daemon must be restarted",
                old_entry.name, old_entry.ip
            )));
        }
        let placed = |c: &Configuration| -> Vec<(DaemonEntry, Option<std::net::Ipv4Addr>)> {
            c.segments
                .iter()
                .flat_map(|s| s.daemons.iter().map(move |d| (d.clone(), Some(s.address))))
                .collect()
        };
        let (old_all, new_all) = (placed(&self.current), placed(&new));
        let singleton = new_all.iter().any(|(d, bcast)| {
            old_all
                .iter()
                .find(|(o, _)| o.ip == d.ip)
                .is_some_and(|(o, ob)| o != d || ob != bcast)
        });
        let added = new_all
            .iter()
            .filter(|(d, _)| !old_all.iter().any(|(o, _)| o.ip == d.ip))
            .map(|(d, _)| d.clone())
            .collect();
        let removed = old_all
            .iter()
            .filter(|(o, _)| !new_all.iter().any(|(d, _)| o.ip == d.ip))
            .map(|(d, _)| d.clone())
            .collect();
        let engine = EngineConfig::from_configuration(&new, me, None, 0)
            .ok_or_else(|| ReloadError::Refused("own entry missing".into()))?;
        let ring = RingParams::after_reload(&new, &entry);
        let addresses = RingAddresses::from_configuration(&new);
        let monitor = MonitorConfig::from_configuration(&new, &entry, ring.conf_hash);
        self.current = new;
        self.me = me;
        Ok(Reloaded {
            engine,
            ring,
            addresses,
            monitor,
            singleton,
            added,
            removed,
        })
    }
}

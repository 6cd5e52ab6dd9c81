//! Dynamic Configuration on the ring: adopting a re-read configuration.
//!
//! As the original: a daemon in OP adopts the new daemon set, hash, timeouts
//! and flow control at once and declares token loss (its ALIVE leaves in the
//! same turn), so the membership algorithm forms the ring of the new file;
//! a daemon in the middle of a membership change postpones the reload until
//! it is operational again. When the new file changed the entry of a daemon
//! present in both files (name, interfaces, broadcast address), the daemon
//! first partitions itself from every other daemon, forms a singleton ring,
//! then lifts that partition and looks for the others at once, so every
//! daemon's groups shrink to its own clients before they merge again.

use crate::clock::Clock;
use crate::membership::State;

use super::{Conf, RingEngine, RingParams, Site, Timer};

/// A reload waiting for the ring to become operational.
#[derive(Clone, Debug)]
pub(crate) struct PendingReload {
    pub params: RingParams,
    pub singleton: bool,
}

impl RingEngine {
    /// Adopts `params` (the re-read configuration of this same daemon);
    /// `singleton` asks for the singleton partition first. Returns whether
    /// the reload ran now (false: postponed until the ring is in OP).
    pub fn reload(&mut self, now: Clock, params: RingParams, singleton: bool) -> bool {
        if self.memb.state() != State::Op {
            log::info!("reload: membership in progress, reloading once it completes");
            self.pending_reload = Some(PendingReload { params, singleton });
            return false;
        }
        self.adopt(now, params, singleton);
        true
    }

    /// Whether a singleton partition of a reload is in force.
    pub fn reload_partitioned(&self) -> bool {
        self.reload_singleton
    }

    pub(crate) fn run_pending_reload(&mut self, now: Clock) {
        if let Some(p) = self.pending_reload.take() {
            if self.memb.state() == State::Op {
                self.adopt(now, p.params, p.singleton);
            } else {
                self.pending_reload = Some(p);
            }
        }
    }

    /// Called when a membership is installed: a postponed reload runs next,
    /// and the singleton partition of a reload is lifted with a lookup.
    pub(crate) fn after_install(&mut self, now: Clock) {
        if self.pending_reload.is_some() {
            self.arm(now, Timer::Reload, std::time::Duration::ZERO);
        }
        if self.reload_singleton {
            self.reload_singleton = false;
            log::info!("reload: singleton ring installed, partition removed, looking for the others");
            self.memb.look_up_now(now);
        }
    }

    fn adopt(&mut self, now: Clock, params: RingParams, singleton: bool) {
        let conf = Conf::new(params.segments);
        if !conf.knows(params.my_id) {
            log::error!(
                "reload: my id {} is not in the new configuration",
                super::ip(params.my_id)
            );
        }
        // Flow control goes back to the file's values (a monitor's FC is lost).
        self.fc.params = params.flow;
        self.reload_singleton = singleton;
        log::info!(
            "reload: hash value for this configuration is {}",
            params.conf_hash
        );
        let site = Site::new(params.my_id, conf, params.conf_hash, params.timeouts);
        self.memb.reconfigure(now, site, &mut self.store);
        self.absorb_membership(now);
    }
}

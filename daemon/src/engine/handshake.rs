//! The client handshake: the connect request, the auth exchange, the
//! session's private name, accept or reject.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use log::{debug, info};
use spread_wire::client::{code, AuthMethodList, GroupName, SessionReply, Version};

use crate::clock::Clock;
use crate::session::{ConnId, Phase, Session};

use super::Engine;

/// The deadlines of the sessions still waiting for their connect request,
/// in order, so the next one is found without visiting every session (a
/// daemon may serve 10,000 of them, and the shell asks at each turn).
///
/// Holds `(deadline, conn)` exactly for the sessions in
/// [`Phase::AwaitConnect`]: armed at the accept, disarmed by
/// [`ConnectDeadlines::set_phase`], through which the engine moves every
/// session out of that phase (the handshake going on, the session dropped).
#[derive(Default)]
pub(super) struct ConnectDeadlines(BTreeSet<(Instant, ConnId)>);

impl ConnectDeadlines {
    /// A session just accepted.
    pub(super) fn arm(&mut self, session: &Session) {
        if let Phase::AwaitConnect { deadline } = session.phase {
            self.0.insert((deadline, session.conn));
        }
    }

    /// Moves `session` to `phase`, forgetting its deadline as it leaves
    /// the connect phase.
    pub(super) fn set_phase(&mut self, session: &mut Session, phase: Phase) {
        if let Phase::AwaitConnect { deadline } = session.phase {
            self.0.remove(&(deadline, session.conn));
        }
        session.phase = phase;
    }

    /// The earliest deadline.
    pub(super) fn next(&self) -> Option<Instant> {
        self.0.first().map(|&(deadline, _)| deadline)
    }

    /// Takes the earliest deadline if it is due at `now`.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<(Instant, ConnId)> {
        match self.0.first() {
            Some(&(deadline, _)) if deadline <= now => self.0.pop_first(),
            _ => None,
        }
    }

    #[cfg(test)]
    pub(super) fn iter(&self) -> impl Iterator<Item = &(Instant, ConnId)> {
        self.0.iter()
    }
}

impl Engine {
    pub(super) fn process_input(&mut self, conn: ConnId, now: Clock) {
        loop {
            let Some(session) = self.sessions.get(&conn) else {
                return;
            };
            match session.phase {
                Phase::AwaitConnect { .. } => {
                    if !self.process_connect(conn) {
                        return;
                    }
                }
                Phase::AwaitAuth => {
                    if session.input_len() == 0 || !self.process_auth(conn) {
                        return;
                    }
                }
                Phase::Operational => return self.process_messages(conn, now),
                Phase::Closed => return,
            }
        }
    }

    /// Read the connect request from what arrived; true if the session moved on.
    pub(super) fn process_connect(&mut self, conn: ConnId) -> bool {
        let Some(session) = self.sessions.get_mut(&conn) else {
            return false;
        };
        let request = match session.take_connect_request() {
            Ok(request) => request,
            Err(e) => {
                info!(target: "spread::session", "connection {conn}: {e}");
                let last_words = e.reject_code().map(|c| vec![c as u8]).unwrap_or_default();
                self.drop_session(conn, last_words);
                return false;
            }
        };
        let name = if request.name.is_empty() {
            self.invent_name(session_fd(&self.sessions, conn))
        } else {
            request.name.clone()
        };
        let private_group = GroupName::private_group(&name, &self.cfg.daemon_name);
        if self.by_private.contains_key(&private_group) {
            debug!(target: "spread::session", "connection {conn}: private name {:?} is in use", String::from_utf8_lossy(&name));
            self.drop_session(conn, vec![code::REJECT_NOT_UNIQUE as u8]);
            return false;
        }
        self.by_private.insert(private_group, conn);
        let session = self.sessions.get_mut(&conn).expect("present");
        session.version = request.version;
        session.wants_membership = request.wants_membership();
        session.priority = request.priority();
        session.name = name;
        session.private_group = private_group;
        if !request.version.does_auth_exchange() {
            let peer = session.peer;
            match self.cfg.auth.authorize_old_library(peer) {
                Ok(()) => self.authorize(conn),
                Err(e) => self.deny(conn, &e.to_string()),
            }
            return true;
        }
        let list = AuthMethodList {
            methods: self.cfg.auth.offered(),
        }
        .emit();
        if self.cfg.auth.offered().is_empty() {
            self.deny(conn, "no AllowedAuthMethods configured");
            return false;
        }
        let session = self.sessions.get_mut(&conn).expect("present");
        session.queue_unit(Arc::new(list));
        self.connect_deadlines.set_phase(session, Phase::AwaitAuth);
        self.wake(conn);
        true
    }

    /// `r<0..9998>-<fd>`, unique among the sessions, as the original invents.
    pub(super) fn invent_name(&mut self, fd: i32) -> Vec<u8> {
        loop {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            let mut name = format!("r{}-{}", self.rng % 9999, fd).into_bytes();
            name.truncate(9);
            if !self
                .by_private
                .contains_key(&GroupName::private_group(&name, &self.cfg.daemon_name))
            {
                return name;
            }
        }
    }

    pub(super) fn process_auth(&mut self, conn: ConnId) -> bool {
        let session = self.sessions.get_mut(&conn).expect("present");
        let Some(choice) = session.take_auth_choice() else {
            // One read must bring all 90 bytes, as in the original.
            self.deny(conn, "short auth choice");
            return false;
        };
        let peer = session.peer;
        match self.cfg.auth.authorize(&choice.methods(), peer) {
            Ok(()) => {
                self.authorize(conn);
                true
            }
            Err(e) => {
                self.deny(conn, &e.to_string());
                false
            }
        }
    }

    pub(super) fn authorize(&mut self, conn: ConnId) {
        let session = self.sessions.get_mut(&conn).expect("present");
        let reply = SessionReply::Accept {
            daemon_version: Version::SPREAD_4_4_0,
            private_group: session.private_group,
        };
        session.queue_unit(Arc::new(reply.emit(session.version.expects_patch_in_accept())));
        self.connect_deadlines.set_phase(session, Phase::Operational);
        debug!(target: "spread::session", "session {} connected (connection {conn}, {:?}, membership {})",
            session.private_group, session.peer, if session.wants_membership { "on" } else { "off" });
        self.wake(conn);
    }

    pub(super) fn deny(&mut self, conn: ConnId, why: &str) {
        info!(target: "spread::session", "connection {conn}: session denied: {why}");
        self.drop_session(conn, vec![code::REJECT_AUTH as u8]);
    }
}

pub(super) fn session_fd(sessions: &crate::fasthash::FastMap<ConnId, Session>, conn: ConnId) -> i32 {
    sessions.get(&conn).map_or(0, |s| s.fd)
}

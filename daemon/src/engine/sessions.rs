//! Operational sessions: client messages in (checked, refused, or on to
//! the sequencer), disconnects, and the bytes queued to each client.

use std::collections::VecDeque;
use std::sync::Arc;

use log::{debug, warn};
use spread_wire::client::limits::{MAX_GROUPS_PER_MESSAGE, MESSAGE_HEADER_LEN};
use spread_wire::client::service::*;
use spread_wire::client::{emit_group_names, emit_reject, hint_for, GroupName, MessageHeader};
use spread_wire::endian::ByteOrder;

use crate::clock::Clock;
use crate::groups::MAX_LOCAL_GROUP_MEMBERS;
use crate::session::{Bytes, ClientMessage, ConnId, HeaderError, Phase, Session};

use super::{Engine, Output};

impl Engine {
    pub(super) fn process_messages(&mut self, conn: ConnId, now: Clock) {
        loop {
            let Some(session) = self.sessions.get_mut(&conn) else {
                return;
            };
            let step = session.next_message(&self.cfg.daemon_name, self.cfg.max_message_body, &mut self.pool);
            if !self.take_framed(conn, step, now) {
                return;
            }
        }
    }

    /// Acts on one message framed for `conn`: handles it, or drops the
    /// session on a bad header. Whether to look for another one.
    fn take_framed(
        &mut self,
        conn: ConnId,
        step: Result<Option<ClientMessage>, HeaderError>,
        now: Clock,
    ) -> bool {
        match step {
            Ok(Some(msg)) => {
                self.handle_client_message(conn, msg, now);
                self.sessions.get(&conn).is_some_and(|s| s.is_operational())
            }
            Ok(None) => false,
            Err(e) => {
                if let Some(name) = self.sessions.get(&conn).map(|s| s.private_group) {
                    self.kill_session(conn, &format!("invalid message header from {name}: {e}"), now);
                }
                false
            }
        }
    }

    /// [`Engine::process_messages`] straight from bytes just read (the
    /// session has nothing buffered); an incomplete message at the end is
    /// kept for the next read.
    pub(super) fn process_messages_in(&mut self, conn: ConnId, mut fresh: &[u8], now: Clock) {
        loop {
            let Some(session) = self.sessions.get_mut(&conn) else {
                return;
            };
            let step = session.next_message_in(
                &mut fresh,
                &self.cfg.daemon_name,
                self.cfg.max_message_body,
                &mut self.pool,
            );
            if matches!(step, Ok(None)) {
                session.receive(fresh);
                return;
            }
            if !self.take_framed(conn, step, now) {
                return;
            }
        }
    }

    pub(super) fn handle_client_message(&mut self, conn: ConnId, msg: ClientMessage, now: Clock) {
        let t = msg.header.service_type;
        if t & KILL_MESS != 0 {
            self.kill_session(conn, "disconnect requested", now);
            return;
        }
        if t & (JOIN_MESS | LEAVE_MESS) != 0 && msg.header.num_groups < 1 {
            warn!(target: "spread::session", "{}: join/leave without a group ignored", msg.header.sender.clean());
            return;
        }
        if t & JOIN_MESS != 0 {
            let group = msg.first_group().expect("num_groups checked").clean();
            let local = self
                .groups
                .get(&group)
                .map_or(0, |g| g.members_on(self.cfg.daemon_rank).count());
            if local >= MAX_LOCAL_GROUP_MEMBERS {
                warn!(target: "spread::session", "{} may not join {group}: {local} local members already", msg.header.sender.clean());
                let old_type = (t & !JOIN_MESS) | CAUSED_BY_JOIN;
                self.deliver_reject(conn, &msg, old_type);
                return;
            }
        }
        self.submit(msg, now);
    }

    /// Send a refused message back to its sender as a REJECT_MESS.
    pub(super) fn deliver_reject(&mut self, conn: ConnId, msg: &ClientMessage, old_type: u32) {
        let mut groups: Vec<GroupName> = msg.groups().collect();
        let me = msg.header.sender.clean();
        if groups.len() >= MAX_GROUPS_PER_MESSAGE {
            groups[MAX_GROUPS_PER_MESSAGE - 1] = me;
        } else {
            groups.push(me);
        }
        let header = MessageHeader {
            service_type: REJECT_MESS | (msg.header.service_type & SELF_DISCARD),
            num_groups: groups.len() as i32,
            ..msg.header
        };
        let body_at = MESSAGE_HEADER_LEN + msg.header.num_groups as usize * 32;
        let bytes = emit_reject(
            &header,
            old_type,
            &groups,
            &msg.bytes[body_at..],
            ByteOrder::NATIVE,
        );
        self.queue_to(conn, Arc::new(bytes));
    }

    /// Drop a session that was operational: its departure is ordered like
    /// any message, so members see the disconnect at one place in the order.
    pub(super) fn kill_session(&mut self, conn: ConnId, why: &str, now: Clock) {
        let Some(session) = self.sessions.get(&conn) else {
            return;
        };
        let me = session.private_group;
        debug!(target: "spread::session", "session {me} (connection {conn}) leaves: {why}");
        if session.is_operational() {
            let header = MessageHeader {
                service_type: KILL_MESS,
                sender: me,
                num_groups: 1,
                hint: hint_for(0, ByteOrder::NATIVE),
                data_len: 0,
            };
            let mut bytes = Vec::with_capacity(MESSAGE_HEADER_LEN + 32);
            header.emit_into(ByteOrder::NATIVE, &mut bytes);
            emit_group_names(&[me], &mut bytes);
            self.submit(
                ClientMessage {
                    header,
                    bytes: Arc::new(bytes),
                },
                now,
            );
        }
        self.drop_session(conn, Vec::new());
    }

    /// Forget a session and ask the shell to close its socket.
    pub(super) fn drop_session(&mut self, conn: ConnId, mut last_words: Vec<u8>) {
        let Some(mut session) = self.sessions.remove(&conn) else {
            return;
        };
        if !session.private_group.is_empty() && self.by_private.get(&session.private_group) == Some(&conn) {
            self.by_private.remove(&session.private_group);
        }
        let mut records = Vec::new();
        if !last_words.is_empty() {
            // Anything still queued (the auth list) goes first.
            let mut pending = Vec::new();
            for chunk in session.output_chunks() {
                records.push(chunk.len());
                pending.extend_from_slice(chunk);
            }
            records.push(last_words.len());
            pending.append(&mut last_words);
            last_words = pending;
        }
        self.connect_deadlines.set_phase(&mut session, Phase::Closed);
        session.drop_output();
        self.forget_intake(conn);
        self.outputs.push_back(Output::Close {
            conn,
            last_words,
            records,
        });
    }

    pub(super) fn wake(&mut self, conn: ConnId) {
        self.outputs.push_back(Output::Wake(conn));
    }

    /// Queue bytes to one session. Whether it keeps up is judged when the
    /// shell has written what the socket takes ([`Engine::check_backlog`]),
    /// so a burst delivered in one go does not count against a reader.
    pub(super) fn queue_to(&mut self, conn: ConnId, bytes: Bytes) {
        let limits = self.queue_limits();
        if let Some(session) = self.sessions.get_mut(&conn) {
            queue_on(session, bytes, limits, &mut self.outputs);
        }
    }

    /// The backlogs at which [`queue_on`] wakes the shell.
    pub(super) fn queue_limits(&self) -> QueueLimits {
        QueueLimits {
            high_water: self.intake_high_water(),
            bound: self.cfg.max_session_messages,
        }
    }
}

/// See [`Engine::queue_limits`].
#[derive(Clone, Copy)]
pub(super) struct QueueLimits {
    high_water: usize,
    bound: usize,
}

/// Queue bytes to a session already looked up (see [`Engine::queue_to`]).
pub(super) fn queue_on(
    session: &mut Session,
    bytes: Bytes,
    limits: QueueLimits,
    outputs: &mut VecDeque<Output>,
) {
    let was_idle = !session.has_output();
    session.queue(bytes);
    // Wake the shell when output starts, when the backlog reaches the
    // high-water mark (a receiver far behind may pause the senders),
    // and when it passes the bound, so a client that stopped reading
    // is judged: its full socket raises no event of its own.
    let n = session.queued_messages();
    if was_idle || n == limits.high_water || n == limits.bound + 1 {
        outputs.push_back(Output::Wake(session.conn));
    }
}

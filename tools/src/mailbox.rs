//! One session with a daemon, on the client core of the `spread` library.

use std::sync::Arc;
use std::time::Duration;

use spread::client::address::DaemonAddress;
use spread::client::connect::{connect, Authenticator, ConnectOptions};
use spread::client::membership::{self, MembInfo, Pieces, VsSet};
use spread::client::session::{self, Delivery, NameSlot, Session};
use spread::SpError;
use spread_wire::client::limits::MAX_GROUP_NAME;
use spread_wire::client::service::DROP_RECV;

pub use spread::client::session::MAX_GROUPS_PER_MESSAGE;

/// No authentication beyond the daemon's default (`NULL`).
struct NoAuth;

impl Authenticator for NoAuth {
    fn names(&self) -> Vec<Vec<u8>> {
        vec![b"NULL".to_vec()]
    }
    fn authenticate(&self, _index: usize, _fd: std::os::fd::RawFd) -> bool {
        true
    }
}

/// A group name in a 32-byte slot, cut to 31 bytes as `strncpy` would.
pub fn name_slot(name: &[u8]) -> NameSlot {
    let mut slot = [0u8; MAX_GROUP_NAME];
    let n = name.len().min(MAX_GROUP_NAME - 1);
    slot[..n].copy_from_slice(&name[..n]);
    slot
}

/// An open session.
pub struct Mailbox {
    session: Arc<Session>,
    mbox: session::Mailbox,
    private_group: Vec<u8>,
}

/// What one receive returned: the code (bytes or an error) and, when the
/// library reports them, the message's details.
pub struct Received {
    pub ret: i32,
    pub delivery: Option<Delivery>,
}

impl Mailbox {
    /// `SP_connect_timeout(spread_name, user, 0, membership, ...)`.
    pub fn connect(
        spread_name: &[u8],
        user: &[u8],
        membership: bool,
        timeout: Option<Duration>,
    ) -> Result<Mailbox, SpError> {
        let address = DaemonAddress::parse(Some(spread_name))?;
        let opts = ConnectOptions {
            address,
            private_name: user,
            priority: 0,
            membership,
            timeout,
        };
        let accepted = connect(&opts, &NoAuth)?;
        let private_group = accepted.private_group.clone();
        let mbox = session::register(accepted)?;
        let session = session::lookup(mbox)?;
        Ok(Mailbox {
            session,
            mbox,
            private_group,
        })
    }

    /// `#name#daemon`.
    pub fn private_group(&self) -> &[u8] {
        &self.private_group
    }

    /// The socket, to wait on.
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.session.mailbox()
    }

    pub fn join(&self, group: &[u8]) -> Result<i32, SpError> {
        self.session.group_control(group, false)
    }

    pub fn leave(&self, group: &[u8]) -> Result<i32, SpError> {
        self.session.group_control(group, true)
    }

    /// Send `body` with `service_type` to `groups` (at most 100).
    pub fn multicast(
        &self,
        service_type: u32,
        groups: &[NameSlot],
        mess_type: i16,
        body: &[u8],
    ) -> Result<i32, SpError> {
        if groups.len() > MAX_GROUPS_PER_MESSAGE {
            return Err(SpError::IllegalGroup);
        }
        self.session.send(service_type, groups, mess_type, &[body])
    }

    /// `SP_receive` into the given buffers; `service_type` may carry
    /// `DROP_RECV`.
    pub fn receive(&self, service_type: u32, groups: &mut [NameSlot], body: &mut [u8]) -> Received {
        let max_groups = groups.len() as i32;
        let mut pieces = [body];
        let (ret, delivery) =
            self.session
                .receive(service_type & DROP_RECV != 0, max_groups, groups, &mut pieces);
        Received { ret, delivery }
    }

    /// `SP_poll`: bytes waiting on the mailbox.
    pub fn poll(&self) -> Result<i32, SpError> {
        self.session.pending_bytes()
    }

    /// `SP_disconnect`: later calls fail with `ILLEGAL_SESSION`.
    pub fn disconnect(&self) {
        self.session.send_kill();
        session::kill(self.mbox);
    }
}

/// `SP_get_memb_info` on a received body.
pub fn memb_info(body: &[u8], service_type: u32) -> Result<MembInfo, SpError> {
    let pieces = [body];
    membership::memb_info(&Pieces(&pieces), service_type)
}

/// `SP_get_vs_sets_info` with room for `room` sets: the sets and the index
/// of the receiver's own.
pub fn vs_sets(body: &[u8], room: i32) -> Result<(Vec<VsSet>, Option<u32>), SpError> {
    let pieces = [body];
    membership::vs_sets(&Pieces(&pieces), room)
}

/// `SP_get_vs_set_members` with room for `room` names.
pub fn vs_set_members(body: &[u8], set: &VsSet, room: i32) -> Result<Vec<NameSlot>, SpError> {
    let len = membership::vs_set_members_len(set, room)?;
    let start = set.members_offset as usize;
    let mut names = Vec::with_capacity(set.num_members as usize);
    for k in 0..len / MAX_GROUP_NAME {
        let mut slot = [0u8; MAX_GROUP_NAME];
        let from = start + k * MAX_GROUP_NAME;
        if from < body.len() {
            let n = (body.len() - from).min(MAX_GROUP_NAME);
            slot[..n].copy_from_slice(&body[from..from + n]);
        }
        names.push(slot);
    }
    Ok(names)
}

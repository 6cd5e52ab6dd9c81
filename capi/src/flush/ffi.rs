//! The C functions of `fl.h`.
//!
//! All `unsafe` code of the flush layer is here: turning the program's
//! pointers into slices and writing results back. The work is done by
//! [`super::conn`].

use std::ffi::{c_char, c_int};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use spread_wire::client::code::{ACCEPT_SESSION, ILLEGAL_GROUP, ILLEGAL_MESSAGE, ILLEGAL_SESSION};
use spread_wire::client::limits::MAX_GROUP_NAME;

use super::conn::{self, FlConn, Receivers, UserBuffers, FL_MAX_SCATTER_ELEMENTS};
use super::view::code;
use crate::client::session::{NameSlot, MAX_GROUPS_PER_MESSAGE};
use crate::ffi_sp::{
    bytes, bytes_mut, c_bytes, mailbox, name_slots, name_slots_mut, scatter, scatter_pieces,
    scatter_pieces_mut, service,
};

/// Version of the flush layer (not of Spread).
const FL_VERSION: (c_int, c_int, c_int) = (2, 0, 0);

/// # Safety
/// `p` is NULL or valid for a write of `T`.
unsafe fn put<T>(p: *mut T, v: T) {
    if !p.is_null() {
        // SAFETY: valid as promised.
        unsafe { p.write(v) }
    }
}

/// Close `mbox` after a fatal error, unless it is by now another connection.
fn drop_dead(mbox: mailbox, conn: &Arc<FlConn>, ret: c_int) {
    if conn::is_fatal(ret) {
        if let Ok(cur) = conn::lookup(mbox) {
            if Arc::ptr_eq(&cur, conn) {
                FL_disconnect(mbox);
            }
        }
    }
}

/// Run `f` on the connection of `mbox`.
fn with_conn(mbox: mailbox, f: impl FnOnce(&FlConn) -> c_int) -> c_int {
    match conn::lookup(mbox) {
        Ok(c) => {
            let ret = f(&c);
            drop_dead(mbox, &c, ret);
            ret
        }
        Err(e) => e,
    }
}

/// Initialise the library: 0 the first time, `ILLEGAL_STATE` after.
#[no_mangle]
pub extern "C" fn FL_lib_init() -> c_int {
    static DONE: AtomicBool = AtomicBool::new(false);
    if DONE.swap(true, Ordering::AcqRel) {
        code::ILLEGAL_STATE
    } else {
        0
    }
}

/// The flush layer's version (2.0.0).
///
/// # Safety
/// Each pointer is NULL or valid for writing an int.
#[no_mangle]
pub unsafe extern "C" fn FL_version(major_ver: *mut c_int, minor_ver: *mut c_int, patch_ver: *mut c_int) {
    // SAFETY: NULL or valid, as promised.
    unsafe {
        put(major_ver, FL_VERSION.0);
        put(minor_ver, FL_VERSION.1);
        put(patch_ver, FL_VERSION.2);
    }
}

/// Connect with group membership on, as a flush connection.
///
/// # Safety
/// As `SP_connect`.
#[no_mangle]
pub unsafe extern "C" fn FL_connect(
    daemon_name: *const c_char,
    user_name: *const c_char,
    priority: c_int,
    mbox: *mut mailbox,
    private_name: *mut c_char,
) -> c_int {
    let mut m: mailbox = -1;
    // SAFETY: forwarded promises; `m` is a valid int.
    let ret = unsafe { crate::ffi_sp::SP_connect(daemon_name, user_name, priority, 1, &mut m, private_name) };
    if ret != ACCEPT_SESSION {
        return ret;
    }
    if let Err(e) = conn::register(m) {
        crate::ffi_sp::SP_disconnect(m);
        return e;
    }
    // SAFETY: valid for an int, as promised.
    unsafe { put(mbox, m) };
    ret
}

/// Disconnect: 0, or `ILLEGAL_SESSION` if `mbox` is no flush connection.
#[no_mangle]
pub extern "C" fn FL_disconnect(mbox: mailbox) -> c_int {
    match conn::unregister(mbox) {
        Some(_) => crate::ffi_sp::SP_disconnect(mbox),
        None => ILLEGAL_SESSION,
    }
}

/// Join a group the connection is not involved with.
///
/// # Safety
/// `group_name` is NULL or a C string.
#[no_mangle]
pub unsafe extern "C" fn FL_join(mbox: mailbox, group_name: *const c_char) -> c_int {
    // SAFETY: forwarded promise.
    let name = unsafe { c_bytes(group_name) };
    with_conn(mbox, |c| match name {
        Some(n) => c.join(n),
        None => ILLEGAL_GROUP,
    })
}

/// Leave a group the connection is a full member of.
///
/// # Safety
/// `group_name` is NULL or a C string.
#[no_mangle]
pub unsafe extern "C" fn FL_leave(mbox: mailbox, group_name: *const c_char) -> c_int {
    // SAFETY: forwarded promise.
    let name = unsafe { c_bytes(group_name) };
    with_conn(mbox, |c| match name {
        Some(n) => c.leave(n),
        None => ILLEGAL_GROUP,
    })
}

/// Agree to the pending view change of a group (once per flush request).
///
/// # Safety
/// `group_name` is NULL or a C string.
#[no_mangle]
pub unsafe extern "C" fn FL_flush(mbox: mailbox, group_name: *const c_char) -> c_int {
    // SAFETY: forwarded promise.
    let name = unsafe { c_bytes(group_name) };
    with_conn(mbox, |c| match name {
        Some(n) => c.flush(n),
        None => ILLEGAL_GROUP,
    })
}

fn send(
    mbox: mailbox,
    serv_type: service,
    group: Option<&[u8]>,
    receivers: Receivers<'_>,
    mess_type: i16,
    body: Option<Vec<&[u8]>>,
) -> c_int {
    with_conn(mbox, |c| {
        c.send(serv_type as u32, group, receivers, mess_type, body.as_deref())
    })
}

/// One buffer as a body: `None` if its length is negative.
///
/// # Safety
/// `mess` holds `mess_len` readable bytes.
unsafe fn one_piece<'a>(mess: *const c_char, mess_len: c_int) -> Option<Vec<&'a [u8]>> {
    // SAFETY: forwarded promise.
    (mess_len >= 0).then(|| vec![unsafe { bytes(mess, mess_len as usize) }])
}

/// Receivers as the program gave them (at most one past the limit is read).
///
/// # Safety
/// `recvrs` holds `num` names.
unsafe fn receivers<'a>(num: c_int, recvrs: *const [c_char; MAX_GROUP_NAME]) -> Receivers<'a> {
    let n = num.clamp(0, MAX_GROUPS_PER_MESSAGE as c_int + 1) as usize;
    // SAFETY: forwarded promise.
    Receivers::Some(num, unsafe { name_slots(recvrs, n) })
}

/// A single receiver given as a string.
///
/// # Safety
/// `recvr` is NULL or a C string.
unsafe fn one_receiver(recvr: *const c_char) -> [NameSlot; 1] {
    let mut slot = [0u8; MAX_GROUP_NAME];
    // SAFETY: forwarded promise.
    if let Some(r) = unsafe { c_bytes(recvr) } {
        let k = r.len().min(MAX_GROUP_NAME - 1);
        slot[..k].copy_from_slice(&r[..k]);
    }
    [slot]
}

/// Send to one member of a group.
///
/// # Safety
/// C strings or NULL; `mess` holds `mess_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn FL_unicast(
    mbox: mailbox,
    serv_type: service,
    group_name: *const c_char,
    recvr_name: *const c_char,
    mess_type: i16,
    mess_len: c_int,
    mess: *const c_char,
) -> c_int {
    // SAFETY: forwarded promises.
    let (group, recvr, body) = unsafe {
        (
            c_bytes(group_name),
            one_receiver(recvr_name),
            one_piece(mess, mess_len),
        )
    };
    send(
        mbox,
        serv_type,
        group,
        Receivers::Some(1, &recvr),
        mess_type,
        body,
    )
}

/// Send a scattered body to one member of a group.
///
/// # Safety
/// C strings or NULL; `scat` a valid scatter.
#[no_mangle]
pub unsafe extern "C" fn FL_scat_unicast(
    mbox: mailbox,
    serv_type: service,
    group_name: *const c_char,
    recvr_name: *const c_char,
    mess_type: i16,
    scat: *const scatter,
) -> c_int {
    // SAFETY: forwarded promises.
    let (group, recvr, body) = unsafe {
        (
            c_bytes(group_name),
            one_receiver(recvr_name),
            scatter_pieces(scat, FL_MAX_SCATTER_ELEMENTS),
        )
    };
    send(
        mbox,
        serv_type,
        group,
        Receivers::Some(1, &recvr),
        mess_type,
        body,
    )
}

/// Send to some members of a group.
///
/// # Safety
/// `recvr_names` holds `num_recvrs` names; `mess` holds `mess_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn FL_subgroupcast(
    mbox: mailbox,
    serv_type: service,
    group_name: *const c_char,
    num_recvrs: c_int,
    recvr_names: *const [c_char; MAX_GROUP_NAME],
    mess_type: i16,
    mess_len: c_int,
    mess: *const c_char,
) -> c_int {
    // SAFETY: forwarded promises.
    let (group, recvrs, body) = unsafe {
        (
            c_bytes(group_name),
            receivers(num_recvrs, recvr_names),
            one_piece(mess, mess_len),
        )
    };
    send(mbox, serv_type, group, recvrs, mess_type, body)
}

/// Send a scattered body to some members of a group.
///
/// # Safety
/// `recvr_names` holds `num_recvrs` names; `scat` a valid scatter.
#[no_mangle]
pub unsafe extern "C" fn FL_scat_subgroupcast(
    mbox: mailbox,
    serv_type: service,
    group_name: *const c_char,
    num_recvrs: c_int,
    recvr_names: *const [c_char; MAX_GROUP_NAME],
    mess_type: i16,
    scat: *const scatter,
) -> c_int {
    // SAFETY: forwarded promises.
    let (group, recvrs, body) = unsafe {
        (
            c_bytes(group_name),
            receivers(num_recvrs, recvr_names),
            scatter_pieces(scat, FL_MAX_SCATTER_ELEMENTS),
        )
    };
    send(mbox, serv_type, group, recvrs, mess_type, body)
}

/// Send to a whole group (or to a private group).
///
/// # Safety
/// `group_name` a C string or NULL; `mess` holds `mess_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn FL_multicast(
    mbox: mailbox,
    serv_type: service,
    group_name: *const c_char,
    mess_type: i16,
    mess_len: c_int,
    mess: *const c_char,
) -> c_int {
    // SAFETY: forwarded promises.
    let (group, body) = unsafe { (c_bytes(group_name), one_piece(mess, mess_len)) };
    send(mbox, serv_type, group, Receivers::All, mess_type, body)
}

/// Send a scattered body to a whole group.
///
/// # Safety
/// `group_name` a C string or NULL; `scat_mess` a valid scatter.
#[no_mangle]
pub unsafe extern "C" fn FL_scat_multicast(
    mbox: mailbox,
    serv_type: service,
    group_name: *const c_char,
    mess_type: i16,
    scat_mess: *const scatter,
) -> c_int {
    // SAFETY: forwarded promises.
    let (group, body) = unsafe {
        (
            c_bytes(group_name),
            scatter_pieces(scat_mess, FL_MAX_SCATTER_ELEMENTS),
        )
    };
    send(mbox, serv_type, group, Receivers::All, mess_type, body)
}

/// # Safety
/// As `FL_scat_receive`, with the body pieces already made.
#[allow(clippy::too_many_arguments)]
unsafe fn receive(
    mbox: mailbox,
    serv_type: *mut service,
    sender_name: *mut c_char,
    max_groups: c_int,
    num_groups: *mut c_int,
    group_names: *mut [c_char; MAX_GROUP_NAME],
    mess_type: *mut i16,
    endian_mismatch: *mut c_int,
    body: Option<Vec<&mut [u8]>>,
    more_msgs: *mut c_int,
) -> c_int {
    if max_groups < 0 {
        return code::ILLEGAL_PARAM;
    }
    let c = match conn::lookup(mbox) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let Some(body) = body else {
        return ILLEGAL_MESSAGE;
    };
    // SAFETY: NULL or valid, as promised.
    let flags = unsafe { serv_type.as_ref() }.copied().unwrap_or(0) as u32;
    // SAFETY: room for `max_groups` names.
    let slots = unsafe { name_slots_mut(group_names, max_groups as usize) };
    let mut out = UserBuffers::new(max_groups, slots, body);
    let ret = c.receive(flags, &mut out);
    // SAFETY: each pointer NULL or valid for its write; `sender_name` has 32 bytes.
    unsafe {
        if let Some(v) = out.service_type {
            put(serv_type, v as service);
        }
        if let Some(s) = out.sender {
            if !sender_name.is_null() {
                bytes_mut(sender_name, MAX_GROUP_NAME).copy_from_slice(&s);
            }
        }
        if let Some(v) = out.num_groups {
            put(num_groups, v);
        }
        if let Some(v) = out.mess_type {
            put(mess_type, v);
        }
        if let Some(v) = out.endian_mismatch {
            put(endian_mismatch, v);
        }
        if let Some(v) = out.more {
            put(more_msgs, v);
        }
    }
    drop_dead(mbox, &c, ret);
    ret
}

/// Receive the next message into one buffer.
///
/// # Safety
/// As `FL_scat_receive`, with `mess` holding `max_mess_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn FL_receive(
    mbox: mailbox,
    serv_type: *mut service,
    sender_name: *mut c_char,
    max_groups: c_int,
    num_groups: *mut c_int,
    group_names: *mut [c_char; MAX_GROUP_NAME],
    mess_type: *mut i16,
    endian_mismatch: *mut c_int,
    max_mess_len: c_int,
    mess: *mut c_char,
    more_msgs: *mut c_int,
) -> c_int {
    // SAFETY: `max_mess_len` writable bytes, as promised.
    let body = (max_mess_len >= 0).then(|| vec![unsafe { bytes_mut(mess, max_mess_len as usize) }]);
    // SAFETY: forwarded promises.
    unsafe {
        receive(
            mbox,
            serv_type,
            sender_name,
            max_groups,
            num_groups,
            group_names,
            mess_type,
            endian_mismatch,
            body,
            more_msgs,
        )
    }
}

/// Receive the next message into a scatter.
///
/// # Safety
/// `serv_type` valid for reading and writing; `sender_name` room for 32
/// bytes; `group_names` room for `max_groups` names; `scat_mess` a valid
/// scatter of writable, non-overlapping elements; other pointers NULL or
/// valid for a write.
#[no_mangle]
pub unsafe extern "C" fn FL_scat_receive(
    mbox: mailbox,
    serv_type: *mut service,
    sender_name: *mut c_char,
    max_groups: c_int,
    num_groups: *mut c_int,
    group_names: *mut [c_char; MAX_GROUP_NAME],
    mess_type: *mut i16,
    endian_mismatch: *mut c_int,
    scat_mess: *mut scatter,
    more_msgs: *mut c_int,
) -> c_int {
    // SAFETY: forwarded promises.
    unsafe {
        let body = scatter_pieces_mut(scat_mess);
        receive(
            mbox,
            serv_type,
            sender_name,
            max_groups,
            num_groups,
            group_names,
            mess_type,
            endian_mismatch,
            body,
            more_msgs,
        )
    }
}

/// Messages already waiting in the library for the program.
#[no_mangle]
pub extern "C" fn FL_more_msgs(mbox: mailbox) -> c_int {
    match conn::lookup(mbox) {
        Ok(c) => c.more_msgs(),
        Err(e) => e,
    }
}

/// Bytes of activity: queued in the library plus waiting on the socket.
#[no_mangle]
pub extern "C" fn FL_poll(mbox: mailbox) -> c_int {
    match conn::lookup(mbox) {
        Ok(c) => c.poll(),
        Err(e) => e,
    }
}

/// Print what an error code means on the program's `stdout`.
#[no_mangle]
pub extern "C" fn FL_error(error_code: c_int) {
    let text = match error_code {
        code::ILLEGAL_PARAM => "An argument was out of range (a negative size or count)",
        code::WOULD_BLOCK => "No message was ready and the call was asked not to block",
        code::ILLEGAL_MESSAGE_TYPE => {
            "Message types below FL_MIN_LEGAL_MESS_TYPE (-32765) belong to the library"
        }
        code::ILLEGAL_STATE => "The call is not allowed in the group's current state",
        code::ILLEGAL_RECEIVERS => "A receiver is not a member of the group's current view",
        _ => {
            crate::ffi_sp::SP_error(error_code);
            return;
        }
    };
    let line = std::ffi::CString::new(format!("FL_error: ({error_code}) {text}\n")).unwrap_or_default();
    // SAFETY: a "%s" format with one valid C string argument.
    unsafe {
        libc::printf(c"%s".as_ptr(), line.as_ptr());
    }
}

/// Offset of the view id in a flush membership body.
#[no_mangle]
pub extern "C" fn FL_get_gid_offset_memb_mess() -> c_int {
    0
}

/// Offset of the member count of the body's set.
#[no_mangle]
pub extern "C" fn FL_get_num_vs_offset_memb_mess() -> c_int {
    spread_wire::flush::VIEW_NUM_VS_OFFSET as c_int
}

/// Offset of the member names of the body's set.
#[no_mangle]
pub extern "C" fn FL_get_vs_set_offset_memb_mess() -> c_int {
    spread_wire::flush::VIEW_VS_SET_OFFSET as c_int
}

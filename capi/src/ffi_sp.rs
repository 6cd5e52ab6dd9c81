//! The C functions of `sp.h` / `sp_func.h`.
//!
//! Every `unsafe` operation of the client library is in this file: turning
//! the program's pointers into slices, the `FIONREAD` ioctl, ignoring
//! `SIGPIPE`, printing through C's `stdout`. The work itself is done by the
//! safe `client` module.

#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_int, c_long, c_void, CStr};
use std::sync::{Mutex, Once};
use std::time::Duration;

use spread_wire::client::limits::{MAX_AUTH_METHODS, MAX_AUTH_NAME, MAX_GROUP_NAME};
use spread_wire::client::service::{DROP_RECV, REGULAR_MESS, REJECT_MESS};

use crate::client::address::DaemonAddress;
use crate::client::connect::{connect, Authenticator, ConnectOptions};
use crate::client::membership::{self, BodyBytes, Pieces};
use crate::client::session::{self, NameSlot, MAX_GROUPS_PER_MESSAGE};
use crate::client::small::SmallList;
use crate::error::SpError;
use crate::ffi_events::sp_time;

/// A session handle: the socket descriptor.
pub type mailbox = c_int;
/// A service type word.
pub type service = c_int;

/// Elements a `scatter` holds.
pub const MAX_CLIENT_SCATTER_ELEMENTS: usize = 100;

/// One piece of a scattered body (`scat_element`).
#[repr(C)]
pub struct scat_element {
    pub buf: *mut c_char,
    pub len: usize,
}

/// A body in pieces (`scatter`).
#[repr(C)]
pub struct scatter {
    pub num_elements: usize,
    pub elements: [scat_element; MAX_CLIENT_SCATTER_ELEMENTS],
}

/// A group view id (`group_id`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct group_id {
    pub id: [c_int; 3],
}

/// A set of members in a membership body (`vs_set_info`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct vs_set_info {
    pub num_members: u32,
    pub members_offset: u32,
}

/// `membership_info`.
#[repr(C)]
pub struct membership_info {
    pub gid: group_id,
    pub changed_member: [c_char; MAX_GROUP_NAME],
    pub num_vs_sets: u32,
    pub my_vs_set: vs_set_info,
}

/// An authentication callback: `(mailbox socket, data) -> 1 accept / 0 refuse`.
pub type sp_auth_fn = Option<extern "C" fn(c_int, *mut c_void) -> c_int>;

const VERSION: (c_int, c_int, c_int) = (4, 4, 0);

// ---------------------------------------------------------------------------
// Helpers turning the program's pointers into Rust values.

/// # Safety
/// `p` is NULL or a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn c_bytes<'a>(p: *const c_char) -> Option<&'a [u8]> {
    if p.is_null() {
        None
    } else {
        // SAFETY: the caller promises a valid C string.
        Some(unsafe { CStr::from_ptr(p) }.to_bytes())
    }
}

/// # Safety
/// `p` is NULL or points at `n` readable 32-byte name slots.
pub(crate) unsafe fn name_slots<'a>(p: *const [c_char; MAX_GROUP_NAME], n: usize) -> &'a [NameSlot] {
    if p.is_null() || n == 0 {
        &[]
    } else {
        // SAFETY: the program passes an array of `n` names (c_char and u8 have the same layout).
        unsafe { std::slice::from_raw_parts(p.cast::<NameSlot>(), n) }
    }
}

/// # Safety
/// `p` is NULL or points at `n` writable 32-byte name slots.
pub(crate) unsafe fn name_slots_mut<'a>(p: *mut [c_char; MAX_GROUP_NAME], n: usize) -> &'a mut [NameSlot] {
    if p.is_null() || n == 0 {
        &mut []
    } else {
        // SAFETY: the program passes an array of `n` writable names.
        unsafe { std::slice::from_raw_parts_mut(p.cast::<NameSlot>(), n) }
    }
}

/// # Safety
/// `p` is NULL or points at `n` readable bytes.
pub(crate) unsafe fn bytes<'a>(p: *const c_char, n: usize) -> &'a [u8] {
    if p.is_null() || n == 0 {
        &[]
    } else {
        // SAFETY: the program passes a buffer of `n` bytes.
        unsafe { std::slice::from_raw_parts(p.cast::<u8>(), n) }
    }
}

/// # Safety
/// `p` is NULL or points at `n` writable bytes.
pub(crate) unsafe fn bytes_mut<'a>(p: *mut c_char, n: usize) -> &'a mut [u8] {
    if p.is_null() || n == 0 {
        &mut []
    } else {
        // SAFETY: the program passes a writable buffer of `n` bytes.
        unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), n) }
    }
}

/// The pieces of a scatter, or `None` if NULL or it claims more than `max`.
///
/// # Safety
/// `s` is NULL or a valid scatter whose used elements point at readable memory.
pub(crate) unsafe fn scatter_pieces<'a>(s: *const scatter, max: usize) -> Option<Vec<&'a [u8]>> {
    // SAFETY: forwarded promise.
    unsafe { collect_scatter(s, max) }
}

/// # Safety
/// As `scatter_pieces`, with writable elements not aliasing each other.
pub(crate) unsafe fn scatter_pieces_mut<'a>(s: *mut scatter) -> Option<Vec<&'a mut [u8]>> {
    // SAFETY: forwarded promise.
    unsafe { collect_scatter_mut(s) }
}

/// `scatter_pieces` into any collection (a `SmallList` on the hot paths).
///
/// # Safety
/// As `scatter_pieces`.
unsafe fn collect_scatter<'a, C: FromIterator<&'a [u8]>>(s: *const scatter, max: usize) -> Option<C> {
    // SAFETY: NULL or a valid scatter, as promised.
    let s = unsafe { s.as_ref() }?;
    if s.num_elements > max {
        return None;
    }
    Some(
        s.elements[..s.num_elements]
            .iter()
            // SAFETY: each used element describes `len` readable bytes.
            .map(|e| unsafe { bytes(e.buf, e.len) })
            .collect(),
    )
}

/// `scatter_pieces_mut` into any collection.
///
/// # Safety
/// As `scatter_pieces_mut`.
unsafe fn collect_scatter_mut<'a, C: FromIterator<&'a mut [u8]>>(s: *mut scatter) -> Option<C> {
    // SAFETY: NULL or a valid scatter, as promised.
    let s = unsafe { s.as_mut() }?;
    if s.num_elements > MAX_CLIENT_SCATTER_ELEMENTS {
        return None;
    }
    Some(
        s.elements[..s.num_elements]
            .iter()
            // SAFETY: each used element describes `len` writable bytes of its own.
            .map(|e| unsafe { bytes_mut(e.buf, e.len) })
            .collect(),
    )
}

/// A 32-byte slot holding `name` as `strncpy` would leave it (31 bytes max).
fn slot_of(name: &[u8]) -> NameSlot {
    let mut slot = [0u8; MAX_GROUP_NAME];
    let n = name.len().min(MAX_GROUP_NAME - 1);
    slot[..n].copy_from_slice(&name[..n]);
    slot
}

/// Write `v` through `p` unless `p` is NULL.
///
/// # Safety
/// `p` is NULL or valid for a write of `T`.
unsafe fn put<T>(p: *mut T, v: T) {
    if !p.is_null() {
        // SAFETY: valid as promised.
        unsafe { p.write(v) }
    }
}

/// A membership body given as a bare pointer, read where the layout says.
struct RawBody(*const c_char);

impl BodyBytes for RawBody {
    fn read(&self, offset: usize, out: &mut [u8]) {
        // SAFETY: the program passed the body of a membership message it
        // received; the offsets read are those its own words describe, as
        // with the original library.
        unsafe { std::ptr::copy_nonoverlapping(self.0.cast::<u8>().add(offset), out.as_mut_ptr(), out.len()) }
    }
}

fn ignore_sigpipe_once() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: installs the "ignore" disposition, as the original library
        // does, so a write to a closed socket fails instead of killing us.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
    });
}

// ---------------------------------------------------------------------------
// Authentication methods.

#[derive(Clone, Copy)]
struct AuthEntry {
    name: [u8; MAX_AUTH_NAME],
    func: extern "C" fn(c_int, *mut c_void) -> c_int,
    /// The program's data pointer, kept as an address.
    data: usize,
}

extern "C" fn null_authenticate(_fd: c_int, _data: *mut c_void) -> c_int {
    1
}

fn auth_table() -> std::sync::MutexGuard<'static, Vec<AuthEntry>> {
    static AUTH: Mutex<Vec<AuthEntry>> = Mutex::new(Vec::new());
    let mut t = AUTH.lock().unwrap_or_else(|p| p.into_inner());
    if t.is_empty() {
        let mut name = [0u8; MAX_AUTH_NAME];
        name[..4].copy_from_slice(b"NULL");
        t.push(AuthEntry {
            name,
            func: null_authenticate,
            data: 0,
        });
    }
    t
}

struct Registered(Vec<AuthEntry>);

impl Authenticator for Registered {
    fn names(&self) -> Vec<Vec<u8>> {
        self.0
            .iter()
            .map(|e| e.name.split(|&b| b == 0).next().unwrap_or_default().to_vec())
            .collect()
    }

    fn authenticate(&self, index: usize, fd: i32) -> bool {
        let e = &self.0[index];
        (e.func)(fd, e.data as *mut c_void) != 0
    }
}

/// Check and copy one method; `None` if the name is too long or no function.
///
/// # Safety
/// `name` is NULL or a C string.
unsafe fn auth_entry(name: *const c_char, func: sp_auth_fn, data: *mut c_void) -> Option<AuthEntry> {
    // SAFETY: forwarded promise.
    let n = unsafe { c_bytes(name) }?;
    if n.len() >= MAX_AUTH_NAME {
        return None;
    }
    let func = func?;
    let mut slot = [0u8; MAX_AUTH_NAME];
    slot[..n.len()].copy_from_slice(n);
    Some(AuthEntry {
        name: slot,
        func,
        data: data as usize,
    })
}

// ---------------------------------------------------------------------------
// The API.

/// Report the library version (4.4.0); 1 on success, 0 if a pointer is NULL.
///
/// # Safety
/// Each pointer is NULL or valid for writing an int.
#[no_mangle]
pub unsafe extern "C" fn SP_version(
    major_version: *mut c_int,
    minor_version: *mut c_int,
    patch_version: *mut c_int,
) -> c_int {
    if major_version.is_null() || minor_version.is_null() || patch_version.is_null() {
        return 0;
    }
    // SAFETY: checked non-NULL; the program passes valid ints.
    unsafe {
        put(major_version, VERSION.0);
        put(minor_version, VERSION.1);
        put(patch_version, VERSION.2);
    }
    1
}

/// Use one authentication method for later connects; 1 on success, 0 on error.
///
/// # Safety
/// `auth_name` is NULL or a C string.
#[no_mangle]
pub unsafe extern "C" fn SP_set_auth_method(
    auth_name: *const c_char,
    auth_function: sp_auth_fn,
    auth_data: *mut c_void,
) -> c_int {
    // SAFETY: forwarded promise.
    match unsafe { auth_entry(auth_name, auth_function, auth_data) } {
        Some(e) => {
            *auth_table() = vec![e];
            1
        }
        None => 0,
    }
}

/// Use up to three authentication methods for later connects.
///
/// # Safety
/// The three arrays hold `num_methods` valid entries.
#[no_mangle]
pub unsafe extern "C" fn SP_set_auth_methods(
    num_methods: c_int,
    auth_name: *mut *const c_char,
    auth_function: *mut sp_auth_fn,
    auth_data: *mut *mut c_void,
) -> c_int {
    if !(0..=MAX_AUTH_METHODS as c_int).contains(&num_methods) {
        return 0;
    }
    let n = num_methods as usize;
    if n > 0 && (auth_name.is_null() || auth_function.is_null() || auth_data.is_null()) {
        return 0;
    }
    let mut entries = Vec::with_capacity(n);
    for i in 0..n {
        // SAFETY: the arrays hold `num_methods` entries, as promised.
        let e = unsafe { auth_entry(*auth_name.add(i), *auth_function.add(i), *auth_data.add(i)) };
        match e {
            Some(e) => entries.push(e),
            None => return 0,
        }
    }
    *auth_table() = entries;
    1
}

/// Connect to a daemon, waiting as long as it takes.
///
/// # Safety
/// As `SP_connect_timeout`.
#[no_mangle]
pub unsafe extern "C" fn SP_connect(
    spread_name: *const c_char,
    private_name: *const c_char,
    priority: c_int,
    group_membership: c_int,
    mbox: *mut mailbox,
    private_group: *mut c_char,
) -> c_int {
    let zero = sp_time { sec: 0, usec: 0 };
    // SAFETY: forwarded promise.
    unsafe {
        SP_connect_timeout(
            spread_name,
            private_name,
            priority,
            group_membership,
            mbox,
            private_group,
            zero,
        )
    }
}

fn timeout_of(t: sp_time) -> Option<Duration> {
    let micros = i128::from(t.sec as c_long) * 1_000_000 + i128::from(t.usec as c_long);
    if t.sec > 0 || (t.sec == 0 && t.usec > 0) {
        Some(Duration::from_micros(micros.clamp(1, u64::MAX as i128) as u64))
    } else {
        None
    }
}

/// Connect to a daemon within `time_out` (zero: no limit).
///
/// # Safety
/// `spread_name`, `private_name`: NULL or C strings; `mbox`: valid for an
/// int; `private_group`: NULL or room for `MAX_GROUP_NAME` bytes.
#[no_mangle]
pub unsafe extern "C" fn SP_connect_timeout(
    spread_name: *const c_char,
    private_name: *const c_char,
    priority: c_int,
    group_membership: c_int,
    mbox: *mut mailbox,
    private_group: *mut c_char,
    time_out: sp_time,
) -> c_int {
    ignore_sigpipe_once();
    // SAFETY: NULL or C strings, as promised.
    let (spread_name, private_name) = unsafe { (c_bytes(spread_name), c_bytes(private_name)) };
    let address = match DaemonAddress::parse(spread_name) {
        Ok(a) => a,
        Err(e) => return e.code(),
    };
    let opts = ConnectOptions {
        address,
        private_name: private_name.unwrap_or_default(),
        priority,
        membership: group_membership != 0,
        timeout: timeout_of(time_out),
    };
    let auth = Registered(auth_table().clone());
    let accepted = match connect(&opts, &auth) {
        Ok(a) => a,
        Err(e) => return e.code(),
    };
    let group = accepted.private_group.clone();
    match session::register(accepted) {
        Ok(m) => {
            if !private_group.is_null() {
                // SAFETY: room for MAX_GROUP_NAME bytes; the name has at most 31.
                let out = unsafe { bytes_mut(private_group, group.len() + 1) };
                out[..group.len()].copy_from_slice(&group);
                out[group.len()] = 0;
            }
            // SAFETY: valid for an int, as promised.
            unsafe { put(mbox, m) };
            spread_wire::client::code::ACCEPT_SESSION
        }
        Err(e) => e.code(),
    }
}

/// Leave the daemon: tell it, then close the mailbox. 0, or `ILLEGAL_SESSION`.
#[no_mangle]
pub extern "C" fn SP_disconnect(mbox: mailbox) -> c_int {
    match session::lookup(mbox) {
        Ok(s) => {
            s.send_kill();
            session::kill(mbox);
            0
        }
        Err(e) => e.code(),
    }
}

/// Close the mailbox without telling the daemon.
#[no_mangle]
pub extern "C" fn SP_kill(mbox: mailbox) {
    if !session::kill(mbox) {
        log::debug!("SP_kill: no session on mailbox {mbox}");
    }
}

/// # Safety
/// `group` is NULL or a C string.
unsafe fn group_control(mbox: mailbox, group: *const c_char, leave: bool) -> c_int {
    // SAFETY: forwarded promise.
    let Some(name) = (unsafe { c_bytes(group) }) else {
        return SpError::IllegalGroup.code();
    };
    match session::lookup(mbox).and_then(|s| s.group_control(name, leave)) {
        Ok(n) => n,
        Err(e) => e.code(),
    }
}

/// Join a group. 0 on success.
///
/// # Safety
/// `group` is NULL or a C string.
#[no_mangle]
pub unsafe extern "C" fn SP_join(mbox: mailbox, group: *const c_char) -> c_int {
    // SAFETY: forwarded promise.
    unsafe { group_control(mbox, group, false) }
}

/// Leave a group. 0 on success.
///
/// # Safety
/// `group` is NULL or a C string.
#[no_mangle]
pub unsafe extern "C" fn SP_leave(mbox: mailbox, group: *const c_char) -> c_int {
    // SAFETY: forwarded promise.
    unsafe { group_control(mbox, group, true) }
}

fn is_regular(service_type: service) -> bool {
    let t = service_type as u32;
    t & REGULAR_MESS != 0 && t & REJECT_MESS == 0
}

fn multicast(
    mbox: mailbox,
    service_type: service,
    groups: Result<&[NameSlot], SpError>,
    mess_type: i16,
    body: Option<&[&[u8]]>,
) -> c_int {
    if !is_regular(service_type) {
        return SpError::IllegalService.code();
    }
    let result = session::lookup(mbox).and_then(|s| {
        let groups = groups?;
        if groups.len() > MAX_GROUPS_PER_MESSAGE {
            return Err(SpError::IllegalGroup);
        }
        let body = body.ok_or(SpError::IllegalMessage)?;
        s.send(service_type as u32, groups, mess_type, body)
    });
    match result {
        Ok(n) => n,
        Err(e) => e.code(),
    }
}

/// The single destination of `SP_multicast`, cut to 31 bytes like `strncpy`.
///
/// # Safety
/// `group` is NULL or a C string.
unsafe fn one_group(group: *const c_char) -> Result<[NameSlot; 1], SpError> {
    // SAFETY: forwarded promise.
    unsafe { c_bytes(group) }
        .map(|g| [slot_of(g)])
        .ok_or(SpError::IllegalGroup)
}

/// Send `mess_len` bytes to one group. Returns the bytes sent or an error.
///
/// # Safety
/// `group`: a C string; `mess`: `mess_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn SP_multicast(
    mbox: mailbox,
    service_type: service,
    group: *const c_char,
    mess_type: i16,
    mess_len: c_int,
    mess: *const c_char,
) -> c_int {
    // SAFETY: forwarded promises.
    let (dest, body) = unsafe { (one_group(group), bytes(mess, mess_len.max(0) as usize)) };
    let body = [body];
    let body = (mess_len >= 0).then_some(&body[..]);
    multicast(
        mbox,
        service_type,
        dest.as_ref().map(|d| &d[..]).map_err(|e| *e),
        mess_type,
        body,
    )
}

/// Send a scattered body to one group.
///
/// # Safety
/// `group`: a C string; `scat_mess`: a valid scatter.
#[no_mangle]
pub unsafe extern "C" fn SP_scat_multicast(
    mbox: mailbox,
    service_type: service,
    group: *const c_char,
    mess_type: i16,
    scat_mess: *const scatter,
) -> c_int {
    // SAFETY: forwarded promises.
    let (dest, pieces) = unsafe {
        (
            one_group(group),
            collect_scatter::<SmallList<_>>(scat_mess, MAX_CLIENT_SCATTER_ELEMENTS),
        )
    };
    multicast(
        mbox,
        service_type,
        dest.as_ref().map(|d| &d[..]).map_err(|e| *e),
        mess_type,
        pieces.as_deref(),
    )
}

fn groups_arg(num_groups: c_int, groups: &[NameSlot]) -> Result<&[NameSlot], SpError> {
    if num_groups < 0 {
        Err(SpError::IllegalGroup)
    } else {
        Ok(groups)
    }
}

/// Send `mess_len` bytes to several groups.
///
/// # Safety
/// `groups`: `num_groups` names; `mess`: `mess_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn SP_multigroup_multicast(
    mbox: mailbox,
    service_type: service,
    num_groups: c_int,
    groups: *const [c_char; MAX_GROUP_NAME],
    mess_type: i16,
    mess_len: c_int,
    mess: *const c_char,
) -> c_int {
    let n = num_groups.clamp(0, MAX_GROUPS_PER_MESSAGE as c_int + 1) as usize;
    // SAFETY: forwarded promises (at most 101 names are looked at).
    let (names, body) = unsafe { (name_slots(groups, n), bytes(mess, mess_len.max(0) as usize)) };
    let body = [body];
    let body = (mess_len >= 0).then_some(&body[..]);
    multicast(mbox, service_type, groups_arg(num_groups, names), mess_type, body)
}

/// Send a scattered body to several groups.
///
/// # Safety
/// `groups`: `num_groups` names; `scat_mess`: a valid scatter.
#[no_mangle]
pub unsafe extern "C" fn SP_multigroup_scat_multicast(
    mbox: mailbox,
    service_type: service,
    num_groups: c_int,
    groups: *const [c_char; MAX_GROUP_NAME],
    mess_type: i16,
    scat_mess: *const scatter,
) -> c_int {
    let n = num_groups.clamp(0, MAX_GROUPS_PER_MESSAGE as c_int + 1) as usize;
    // SAFETY: forwarded promises (at most 101 names are looked at).
    let (names, pieces) = unsafe {
        (
            name_slots(groups, n),
            collect_scatter::<SmallList<_>>(scat_mess, MAX_CLIENT_SCATTER_ELEMENTS),
        )
    };
    multicast(
        mbox,
        service_type,
        groups_arg(num_groups, names),
        mess_type,
        pieces.as_deref(),
    )
}

/// Receive into one buffer.
///
/// # Safety
/// As `SP_scat_receive`, with `mess` holding `max_mess_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn SP_receive(
    mbox: mailbox,
    service_type: *mut service,
    sender: *mut c_char,
    max_groups: c_int,
    num_groups: *mut c_int,
    groups: *mut [c_char; MAX_GROUP_NAME],
    mess_type: *mut i16,
    endian_mismatch: *mut c_int,
    max_mess_len: c_int,
    mess: *mut c_char,
) -> c_int {
    let body = if mess.is_null() {
        &mut [][..]
    } else {
        // SAFETY: `max_mess_len` writable bytes, as promised.
        unsafe { bytes_mut(mess, max_mess_len.max(0) as usize) }
    };
    let mut body = [body];
    // SAFETY: forwarded promises.
    unsafe {
        receive(
            mbox,
            service_type,
            sender,
            max_groups,
            num_groups,
            groups,
            mess_type,
            endian_mismatch,
            Some(&mut body),
        )
    }
}

/// Receive into a scatter.
///
/// # Safety
/// `service_type` valid for read and write; `sender` room for 32 bytes;
/// `groups` room for `max_groups` names; `scat_mess` a valid scatter of
/// writable, non-overlapping elements; other pointers valid for a write.
#[no_mangle]
pub unsafe extern "C" fn SP_scat_receive(
    mbox: mailbox,
    service_type: *mut service,
    sender: *mut c_char,
    max_groups: c_int,
    num_groups: *mut c_int,
    groups: *mut [c_char; MAX_GROUP_NAME],
    mess_type: *mut i16,
    endian_mismatch: *mut c_int,
    scat_mess: *mut scatter,
) -> c_int {
    // SAFETY: forwarded promises.
    unsafe {
        let mut pieces = collect_scatter_mut::<SmallList<_>>(scat_mess);
        receive(
            mbox,
            service_type,
            sender,
            max_groups,
            num_groups,
            groups,
            mess_type,
            endian_mismatch,
            pieces.as_deref_mut(),
        )
    }
}

/// # Safety
/// As `SP_scat_receive`.
#[allow(clippy::too_many_arguments)]
unsafe fn receive(
    mbox: mailbox,
    service_type: *mut service,
    sender: *mut c_char,
    max_groups: c_int,
    num_groups: *mut c_int,
    groups: *mut [c_char; MAX_GROUP_NAME],
    mess_type: *mut i16,
    endian_mismatch: *mut c_int,
    pieces: Option<&mut [&mut [u8]]>,
) -> c_int {
    let s = match session::lookup(mbox) {
        Ok(s) => s,
        Err(e) => return e.code(),
    };
    let Some(pieces) = pieces else {
        return SpError::IllegalMessage.code();
    };
    // SAFETY: NULL or valid for reading, as promised.
    let flags = unsafe { service_type.as_ref() }.copied().unwrap_or(0) as u32;
    let max_groups = if groups.is_null() {
        max_groups.min(0)
    } else {
        max_groups
    };
    // SAFETY: room for `max_groups` names.
    let slots = unsafe { name_slots_mut(groups, max_groups.max(0) as usize) };
    let (code, delivery) = s.receive(flags & DROP_RECV != 0, max_groups, slots, pieces);
    if let Some(d) = delivery {
        // SAFETY: each pointer is NULL or valid for its write; `sender` has 32 bytes.
        unsafe {
            put(service_type, d.service_type as service);
            if !sender.is_null() {
                bytes_mut(sender, MAX_GROUP_NAME).copy_from_slice(&d.sender);
            }
            put(num_groups, d.num_groups);
            put(mess_type, d.mess_type);
            put(endian_mismatch, d.endian_mismatch);
        }
    }
    code
}

/// Bytes waiting on the mailbox (`FIONREAD`), or `ILLEGAL_SESSION`.
#[no_mangle]
pub extern "C" fn SP_poll(mbox: mailbox) -> c_int {
    match session::lookup(mbox).and_then(|s| s.pending_bytes()) {
        Ok(n) => n,
        Err(e) => e.code(),
    }
}

/// 1 if the two group ids are equal, else 0.
#[no_mangle]
pub extern "C" fn SP_equal_group_ids(g1: group_id, g2: group_id) -> c_int {
    c_int::from(g1.id == g2.id)
}

/// Print what an error code means, on the program's `stdout`.
#[no_mangle]
pub extern "C" fn SP_error(error: c_int) {
    let line = format!("{}\n", SpError::from_code(error));
    let line = std::ffi::CString::new(line).unwrap_or_default();
    // SAFETY: a "%s" format with one valid C string argument.
    unsafe {
        libc::printf(c"%s".as_ptr(), line.as_ptr());
    }
}

fn write_memb_info(info: &membership::MembInfo, out: &mut membership_info) {
    out.gid = group_id { id: info.gid.words() };
    if let Some(name) = info.changed_member {
        for (d, s) in out.changed_member.iter_mut().zip(name) {
            *d = s as c_char;
        }
    }
    out.num_vs_sets = info.num_vs_sets;
    out.my_vs_set = vs_set_info {
        num_members: info.my_vs_set.num_members,
        members_offset: info.my_vs_set.members_offset,
    };
}

fn get_memb_info(body: &dyn BodyBytes, service_type: service, out: Option<&mut membership_info>) -> c_int {
    let Some(out) = out else {
        return SpError::IllegalMessage.code();
    };
    match membership::memb_info(body, service_type as u32) {
        Ok(info) => {
            write_memb_info(&info, out);
            1
        }
        Err(e) => e.code(),
    }
}

/// # Safety
/// `vs_sets` has room for `num_vs_sets` entries; `my_index` NULL or valid.
unsafe fn get_vs_sets_info(
    body: &dyn BodyBytes,
    vs_sets: *mut vs_set_info,
    num_vs_sets: c_int,
    my_index: *mut u32,
) -> c_int {
    match membership::vs_sets(body, num_vs_sets) {
        Ok((sets, mine)) => {
            if !sets.is_empty() && vs_sets.is_null() {
                return SpError::BufferTooShort.code();
            }
            for (i, set) in sets.iter().enumerate() {
                // SAFETY: room for `num_vs_sets` >= sets.len() entries.
                unsafe {
                    vs_sets.add(i).write(vs_set_info {
                        num_members: set.num_members,
                        members_offset: set.members_offset,
                    })
                };
            }
            if let Some(i) = mine {
                // SAFETY: NULL or valid, as promised.
                unsafe { put(my_index, i) };
            }
            sets.len() as c_int
        }
        Err(e) => e.code(),
    }
}

/// # Safety
/// `vs_set` NULL or valid; `member_names` room for `count` names.
unsafe fn get_vs_set_members(
    body: &dyn BodyBytes,
    vs_set: *const vs_set_info,
    member_names: *mut [c_char; MAX_GROUP_NAME],
    count: c_int,
) -> c_int {
    // SAFETY: NULL or valid, as promised.
    let Some(set) = (unsafe { vs_set.as_ref() }) else {
        return SpError::IllegalMessage.code();
    };
    let set = membership::VsSet {
        num_members: set.num_members,
        members_offset: set.members_offset,
    };
    match membership::vs_set_members_len(&set, count) {
        Ok(len) => {
            // SAFETY: room for `count` >= num_members names.
            let out = unsafe { name_slots_mut(member_names, set.num_members as usize) };
            let out = out.as_flattened_mut();
            if out.len() == len {
                body.read(set.members_offset as usize, out);
            }
            set.num_members as c_int
        }
        Err(e) => e.code(),
    }
}

/// Membership facts of a received membership message.
///
/// # Safety
/// `memb_mess` is the body of a membership message as received; `memb_info` valid.
#[no_mangle]
pub unsafe extern "C" fn SP_get_memb_info(
    memb_mess: *const c_char,
    service_type: service,
    memb_info: *mut membership_info,
) -> c_int {
    if memb_mess.is_null() {
        return SpError::IllegalMessage.code();
    }
    // SAFETY: NULL or valid, as promised.
    get_memb_info(&RawBody(memb_mess), service_type, unsafe { memb_info.as_mut() })
}

/// The vs sets of a membership body.
///
/// # Safety
/// `memb_mess` a membership body; `vs_sets` room for `num_vs_sets` entries.
#[no_mangle]
pub unsafe extern "C" fn SP_get_vs_sets_info(
    memb_mess: *const c_char,
    vs_sets: *mut vs_set_info,
    num_vs_sets: c_int,
    my_vs_set_index: *mut u32,
) -> c_int {
    if memb_mess.is_null() {
        return SpError::IllegalMessage.code();
    }
    // SAFETY: forwarded promises.
    unsafe { get_vs_sets_info(&RawBody(memb_mess), vs_sets, num_vs_sets, my_vs_set_index) }
}

/// The member names of one vs set.
///
/// # Safety
/// `memb_mess` a membership body; `member_names` room for `member_names_count` names.
#[no_mangle]
pub unsafe extern "C" fn SP_get_vs_set_members(
    memb_mess: *const c_char,
    vs_set: *const vs_set_info,
    member_names: *mut [c_char; MAX_GROUP_NAME],
    member_names_count: c_int,
) -> c_int {
    if memb_mess.is_null() {
        return SpError::IllegalMessage.code();
    }
    // SAFETY: forwarded promises.
    unsafe { get_vs_set_members(&RawBody(memb_mess), vs_set, member_names, member_names_count) }
}

/// `SP_get_memb_info` on a scattered body.
///
/// # Safety
/// `memb_mess_scat` a valid scatter holding the body; `memb_info` valid.
#[no_mangle]
pub unsafe extern "C" fn SP_scat_get_memb_info(
    memb_mess_scat: *const scatter,
    service_type: service,
    memb_info: *mut membership_info,
) -> c_int {
    // SAFETY: forwarded promises.
    let (pieces, out) = unsafe {
        (
            scatter_pieces(memb_mess_scat, MAX_CLIENT_SCATTER_ELEMENTS),
            memb_info.as_mut(),
        )
    };
    match pieces {
        Some(p) => get_memb_info(&Pieces(&p), service_type, out),
        None => SpError::IllegalMessage.code(),
    }
}

/// `SP_get_vs_sets_info` on a scattered body.
///
/// # Safety
/// As `SP_get_vs_sets_info`, with a valid scatter.
#[no_mangle]
pub unsafe extern "C" fn SP_scat_get_vs_sets_info(
    memb_mess_scat: *const scatter,
    vs_sets: *mut vs_set_info,
    num_vs_sets: c_int,
    my_vs_set_index: *mut u32,
) -> c_int {
    // SAFETY: forwarded promises.
    match unsafe { scatter_pieces(memb_mess_scat, MAX_CLIENT_SCATTER_ELEMENTS) } {
        // SAFETY: forwarded promises.
        Some(p) => unsafe { get_vs_sets_info(&Pieces(&p), vs_sets, num_vs_sets, my_vs_set_index) },
        None => SpError::IllegalMessage.code(),
    }
}

/// `SP_get_vs_set_members` on a scattered body.
///
/// # Safety
/// As `SP_get_vs_set_members`, with a valid scatter.
#[no_mangle]
pub unsafe extern "C" fn SP_scat_get_vs_set_members(
    memb_mess_scat: *const scatter,
    vs_set: *const vs_set_info,
    member_names: *mut [c_char; MAX_GROUP_NAME],
    member_names_count: c_int,
) -> c_int {
    // SAFETY: forwarded promises.
    match unsafe { scatter_pieces(memb_mess_scat, MAX_CLIENT_SCATTER_ELEMENTS) } {
        // SAFETY: forwarded promises.
        Some(p) => unsafe { get_vs_set_members(&Pieces(&p), vs_set, member_names, member_names_count) },
        None => SpError::IllegalMessage.code(),
    }
}

/// Spread 3.x helper: offset of the group id in a membership body.
#[no_mangle]
pub extern "C" fn SP_get_gid_offset_memb_mess() -> c_int {
    membership::GID_OFFSET as c_int
}

/// Spread 3.x helper: offset of the member count of the (first) vs set, the
/// set holding the changed member of a join, leave or disconnect.
#[no_mangle]
pub extern "C" fn SP_get_num_vs_offset_memb_mess() -> c_int {
    membership::FIRST_VS_SET_OFFSET as c_int
}

/// Spread 3.x helper: offset of the member names of the (first) vs set.
#[no_mangle]
pub extern "C" fn SP_get_vs_set_offset_memb_mess() -> c_int {
    membership::FIRST_VS_SET_OFFSET as c_int + 4
}

/// Never implemented by Spread: always -1.
#[no_mangle]
pub extern "C" fn SP_query_groups(_mbox: mailbox, _max_groups: c_int, _groups: *mut *mut c_char) -> c_int {
    -1
}

/// Never implemented by Spread: always -1.
#[no_mangle]
pub extern "C" fn SP_query_members(
    _mbox: mailbox,
    _group: *mut c_char,
    _max_members: c_int,
    _members: *mut *mut c_char,
) -> c_int {
    -1
}

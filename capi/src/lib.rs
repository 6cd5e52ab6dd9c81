//! `libspread`: the Spread 4.4 client C library, in Rust.
//!
//! Built as `libspread.so.3` (and `libspread.a`), a drop-in for the original
//! library: the same functions, return codes and structure layouts as the
//! original `sp.h`, `sp_func.h` and `sp_events.h` (our own versions of those
//! headers are in `include/`).
//!
//! * [`client`]: a safe client of the daemon protocol (sessions, sending,
//!   receiving straight into the caller's buffers, membership bodies).
//! * [`ffi_sp`]: the `SP_*` functions; [`ffi_events`]: the `E_*` event loop.
//!   All `unsafe` code of the client and event loop is in these two modules,
//!   but for the socket calls of [`client::stream`] (`read`, `readv`,
//!   `writev` and the `FIONREAD` ioctl).
//! * [`flush`]: the `FL_*` flush library (its own FFI module).

#![deny(unsafe_op_in_unsafe_fn)]

pub mod client;
pub mod error;
pub mod ffi_events;
pub mod ffi_sp;
pub mod flush;

pub use error::SpError;

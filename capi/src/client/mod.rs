//! A safe client of the Spread 4 daemon protocol, on real sockets.
//!
//! The C functions of `ffi_sp` are thin wrappers over this module.

pub mod address;
pub mod connect;
pub mod membership;
pub mod session;
pub mod small;
pub mod stream;

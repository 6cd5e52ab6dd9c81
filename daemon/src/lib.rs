//! The spread daemon: a drop-in replacement for the Spread 4.4 daemon.
//!
//! * [`engine`]: the sans-IO core: [`session`]s and [`groups`] over an
//!   ordering layer; fed events and the clock, it never touches a socket.
//! * [`auth`]: the NULL and IP client authentication methods.
//! * [`configuration`]: the `spread.conf` grammar and the configuration hash.
//! * [`shell`]: the thin mio event loop that runs the engine on real sockets.

pub mod auth;
pub mod configuration;
pub mod engine;
pub mod groups;
pub mod logging;
pub mod network;
#[cfg(not(spread_lead_only))] // TEMP while helpers work
pub mod membership;
#[cfg(not(spread_lead_only))] // TEMP while helpers work
pub mod ring;
pub mod session;
pub mod shell;

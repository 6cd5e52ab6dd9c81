//! The spread daemon: a drop-in replacement for the Spread 4.4 daemon.
//!
//! * [`engine`]: the sans-IO core: [`session`]s and [`groups`] over an
//!   sequencer; fed events and the clock, it never touches a socket.
//! * [`ring`] and [`membership`]: the daemon-to-daemon token ring protocol
//!   and its membership algorithm (sans-IO), ordering client messages when
//!   the configuration has more than one daemon.
//! * [`clock`]: time as a value the shell passes into every handler.
//! * [`auth`]: the NULL and IP client authentication methods.
//! * [`configuration`]: the `spread.conf` grammar and the configuration hash.
//! * [`shell`] and [`network`]: the thin mio event loop that runs the engine
//!   on real sockets (client TCP/Unix listeners, the ring's UDP channels);
//!   [`notify`] tells a systemd-style service manager when it is ready.
//! * [`os`]: the calls into the operating system that need `unsafe` (clocks,
//!   interfaces, host name, signals, privilege drop); the rest of the crate
//!   denies unsafe code.

#![deny(unsafe_code)]

pub mod auth;
pub mod clock;
pub mod configuration;
pub mod engine;
pub mod fasthash;
pub mod groups;
pub mod logging;
pub mod membership;
pub mod monitor;
pub mod network;
pub mod notify;
pub mod os;
pub(crate) mod packet_store;
pub mod reload;
pub mod ring;
pub mod ring_conf;
pub mod session;
pub mod shell;
pub(crate) mod timers;

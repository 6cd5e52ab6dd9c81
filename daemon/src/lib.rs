//! The spread daemon.

//! The flush layer's message layouts live in the codec crate.

pub use spread_wire::flush::*;

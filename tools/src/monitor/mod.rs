//! spmonitor's interactive menu, on the monitor codecs of `spread_wire::monitor`.

pub mod menu;
pub mod probe;

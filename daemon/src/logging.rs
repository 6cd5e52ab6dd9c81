//! Logging: the original's event categories (DebugFlags) and priority
//! (EventPriority) mapped onto `log` targets and levels.
//!
//! | DebugFlags category       | log target            |
//! |---------------------------|-----------------------|
//! | SESSION                   | `spread::session`     |
//! | GROUPS                    | `spread::groups`      |
//! | PROTOCOL                  | `spread::ring`        |
//! | MEMBERSHIP                | `spread::membership`  |
//! | NETWORK, DATA_LINK        | `spread::network`     |
//! | FLOW_CONTROL              | `spread::flow_control`|
//! | CONFIGURATION             | `spread::configuration` |
//! | ACM, SECURITY             | `spread::auth`        |
//!
//! A category whose flag is set logs at debug level; everything else logs
//! at the level EventPriority names (default: info). `RUST_LOG`, when set,
//! overrides both.
//!
//! As in the original, the defaults log the configuration, ring membership
//! changes, warnings and errors only: events of single sessions and groups
//! (connect, disconnect, join, leave, network views) are debug lines of
//! `spread::session` and `spread::groups`, shown by `DebugFlags = { SESSION
//! GROUPS }` (tested in `daemon/tests/logging_defaults.rs`).

use std::fs::OpenOptions;

use crate::configuration::debug_flags as flags;
use crate::configuration::{Configuration, EventPriority};

const CATEGORIES: &[(u32, &[&str])] = &[
    (flags::SESSION, &["spread::session"]),
    (flags::GROUPS, &["spread::groups"]),
    (flags::PROTOCOL, &["spread::ring"]),
    (flags::MEMBERSHIP, &["spread::membership"]),
    (flags::NETWORK | flags::DATA_LINK, &["spread::network"]),
    (flags::FLOW_CONTROL, &["spread::flow_control"]),
    (flags::CONFIGURATION, &["spread::configuration"]),
    (flags::ACM | flags::SECURITY, &["spread::auth"]),
];

/// The `env_logger` filter the configuration asks for.
pub fn filter_for(config: &Configuration) -> String {
    let base = match config.event_priority {
        EventPriority::Debug => "debug",
        EventPriority::Info => "info",
        EventPriority::Warning => "warn",
        EventPriority::Error | EventPriority::Critical | EventPriority::Fatal => "error",
    };
    let mut filter = String::from(base);
    for (bits, targets) in CATEGORIES {
        if config.debug_flags & bits != 0 {
            for t in *targets {
                filter.push_str(&format!(",{t}=debug"));
            }
        }
    }
    filter
}

/// Start logging to stderr, or to EventLogFile when the file sets one.
pub fn init(config: &Configuration) -> Result<(), String> {
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(&filter_for(config));
    if let Ok(env) = std::env::var("RUST_LOG") {
        builder.parse_filters(&env);
    }
    match (&config.event_timestamp, config.event_precise_timestamp) {
        (None, _) => builder.format_timestamp(None),
        (Some(_), false) => builder.format_timestamp_secs(),
        (Some(_), true) => builder.format_timestamp_micros(),
    };
    if let Some(path) = config.event_log_path(&crate::os::host_name()) {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("cannot open EventLogFile {}: {e}", path.display()))?;
        builder.target(env_logger::Target::Pipe(Box::new(file)));
    }
    builder.try_init().map_err(|e| e.to_string())
}

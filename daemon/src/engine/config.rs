//! The engine's and the ring's parameters, from the configuration: the one
//! place the daemon turns a [`Configuration`] into what the engines need.

use crate::auth::{AuthPolicy, IpAccessList};
use crate::configuration::{Configuration, DaemonEntry, DaemonRef};
use crate::ring::{FlowParams, RingParams, SegmentConf};

use super::EngineConfig;

impl EngineConfig {
    /// The engine of daemon `me` of `config`: its name, address and rank,
    /// every daemon's name and id in configuration order, the auth policy
    /// (with the IP access list, if one was read), the session limits.
    /// `seed` seeds the invented private names.
    pub fn from_configuration(
        config: &Configuration,
        me: DaemonRef,
        ip_access: Option<IpAccessList>,
        seed: u64,
    ) -> Option<EngineConfig> {
        let entry = config.daemon(me)?;
        let rank = config.daemon_refs().position(|(r, _)| r == me).unwrap_or(0) as u32;
        Some(EngineConfig {
            daemon_name: entry.name.as_bytes().to_vec(),
            daemon_ip: entry.ip,
            daemon_rank: rank,
            daemon_names: config
                .daemon_refs()
                .map(|(_, d)| d.name.as_bytes().to_vec())
                .collect(),
            daemon_ids: config
                .daemon_refs()
                .map(|(_, d)| u32::from(d.ip) as i32)
                .collect(),
            auth: AuthPolicy {
                allowed: config.allowed_auth_methods.clone(),
                required: config.required_auth_methods.clone(),
                ip_access,
            },
            max_session_messages: config.max_session_messages,
            max_message_body: config.extensions.max_message_body,
            max_sessions: config.extensions.max_sessions,
            receiver_back_pressure: config.extensions.receiver_back_pressure,
            seed,
        })
    }
}

impl RingParams {
    /// The ring of daemon `me` of `config`: segments, configuration hash,
    /// membership timeouts, flow control.
    pub fn from_configuration(config: &Configuration, me: &DaemonEntry) -> RingParams {
        let segments: Vec<SegmentConf> = config
            .segments
            .iter()
            .map(|s| SegmentConf {
                bcast: u32::from(s.address),
                port: s.port,
                daemons: s.daemons.iter().map(|d| u32::from(d.ip)).collect(),
            })
            .collect();
        let mut params = RingParams::new(u32::from(me.ip), segments, config.hash());
        params.timeouts = config.timeouts;
        params.flow = FlowParams {
            window: config.flow.window as i32,
            personal_window: config.flow.personal_window as i32,
            // The original's flow control reads the setting before the LAN
            // default would switch it on (the captures show packets sent
            // before the token), so only an explicit AcceleratedRing turns
            // it on.
            accelerated_ring: config.flow.accelerated_ring_set && config.flow.accelerated_ring,
            accelerated_window: config.flow.accelerated_window as i32,
        };
        params.reply_hold = std::time::Duration::from_micros(u64::from(config.extensions.token_reply_hold));
        params
    }
}

impl RingParams {
    /// The ring of daemon `me` after a reload of `config`: the hash and
    /// the accelerated ring the original has after a reload (see
    /// [`Configuration::hash_after_reload`]).
    pub fn after_reload(config: &Configuration, me: &DaemonEntry) -> RingParams {
        let mut params = RingParams::from_configuration(config, me);
        params.conf_hash = config.hash_after_reload();
        params.flow.accelerated_ring = config.accelerated_after_reload();
        params
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const CONF: &str = "Spread_Segment 10.0.0.255:4803 {\n d1 10.0.0.1\n d2 10.0.0.2\n d3 10.0.0.3\n}\n\
        DaemonUser = spread\nAllowedAuthMethods = \"NULL IP\"\nMaxSessionMessages = 77\nWindow = 90\n";

    #[test]
    fn the_engine_and_ring_parameters_come_from_the_configuration() {
        let config = Configuration::parse(CONF, "spread.conf").expect("parses");
        let me = config.find_daemon(Some("d2"), &[]).expect("d2");
        let cfg = EngineConfig::from_configuration(&config, me, None, 9).expect("d2's entry");
        assert_eq!(cfg.daemon_name, b"d2");
        assert_eq!(cfg.daemon_ip, Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(cfg.daemon_rank, 1);
        assert_eq!(cfg.daemon_names, [b"d1".to_vec(), b"d2".to_vec(), b"d3".to_vec()]);
        assert_eq!(cfg.daemon_ids, [0x0a00_0001, 0x0a00_0002, 0x0a00_0003]);
        assert_eq!(cfg.auth.allowed, ["NULL", "IP"]);
        assert_eq!(cfg.max_session_messages, 77);
        assert_eq!(cfg.seed, 9);
        let ring = RingParams::from_configuration(&config, config.daemon(me).unwrap());
        assert_eq!(ring.my_id, 0x0a00_0002);
        assert_eq!(ring.conf_hash, config.hash());
        assert_eq!(ring.segments.len(), 1);
        assert_eq!(ring.segments[0].bcast, 0x0a00_00ff);
        assert_eq!(ring.segments[0].daemons, [0x0a00_0001, 0x0a00_0002, 0x0a00_0003]);
        assert_eq!(ring.timeouts, config.timeouts);
        assert_eq!(ring.flow.window, 90);
        assert!(!ring.flow.accelerated_ring, "only an explicit AcceleratedRing");
    }
}

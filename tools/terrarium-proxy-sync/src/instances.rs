//! Instances as `lxc list --format=json` reports them, reduced to what proxy sync needs.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Deserialize;

/// The label that publishes an instance (the `rename` of `RawConfig::proxy`).
pub const PROXY_KEY: &str = "user.proxy";

/// One instance: its name, creation time, whether it runs, its address and label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub name: String,
    /// Creation time as a sortable key (RFC 3339 seconds, nanoseconds), for "first created keeps it".
    pub created: (String, u32),
    pub running: bool,
    /// Global IPv4 on a non-loopback interface, else global IPv6; `None` when there is none yet.
    pub address: Option<IpAddr>,
    /// `user.proxy` from the instance config, else from the expanded config (a profile).
    pub label: Option<String>,
}

/// Why the instance list could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the instance list from {origin}: {source}; it must be the output of `lxc list --format=json`")]
pub struct InstancesError {
    origin: String,
    source: serde_json::Error,
}

#[derive(Deserialize)]
struct RawInstance {
    name: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    created_at: String,
    #[serde(default)]
    config: RawConfig,
    #[serde(default)]
    expanded_config: RawConfig,
    #[serde(default)]
    state: Option<RawState>,
}

/// Only the key we need: the rest of a config map is skipped without allocating it.
#[derive(Default, Deserialize)]
struct RawConfig {
    #[serde(default, rename = "user.proxy")]
    proxy: Option<String>,
}

#[derive(Deserialize)]
struct RawState {
    #[serde(default)]
    network: Option<BTreeMap<String, RawInterface>>,
}

#[derive(Deserialize)]
struct RawInterface {
    #[serde(default)]
    addresses: Vec<RawAddress>,
    /// The host side of an LXD-managed NIC; empty for interfaces made inside the
    /// container (docker0, bridges), which we prefer not to target.
    #[serde(default)]
    host_name: String,
    #[serde(default, rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct RawAddress {
    family: String,
    address: String,
    #[serde(default)]
    scope: String,
}

/// Parse `lxc list --format=json` output; `origin` names it in errors.
pub fn parse(json: &str, origin: &str) -> Result<Vec<Instance>, InstancesError> {
    let raw: Vec<RawInstance> =
        serde_json::from_str(json).map_err(|source| InstancesError { origin: origin.to_string(), source })?;
    Ok(raw.into_iter().map(Instance::from).collect())
}

impl From<RawInstance> for Instance {
    fn from(raw: RawInstance) -> Self {
        let label = raw.config.proxy.or(raw.expanded_config.proxy);
        let running = raw.status.eq_ignore_ascii_case("running");
        let address = if running { raw.state.and_then(|s| s.network).and_then(|n| pick_address(&n)) } else { None };
        Self { name: raw.name, created: created_key(&raw.created_at), running, address, label }
    }
}

/// IPv4 before IPv6; among interfaces, LXD-managed NICs first, then by name.
fn pick_address(network: &BTreeMap<String, RawInterface>) -> Option<IpAddr> {
    let mut interfaces: Vec<(&String, &RawInterface)> =
        network.iter().filter(|(name, iface)| name.as_str() != "lo" && iface.kind != "loopback").collect();
    interfaces.sort_by_key(|(name, iface)| (iface.host_name.is_empty(), name.as_str()));
    for family in ["inet", "inet6"] {
        for (_, iface) in &interfaces {
            for address in &iface.addresses {
                if address.family != family || address.scope != "global" {
                    continue;
                }
                if let Ok(ip) = address.address.parse::<IpAddr>()
                    && !ip.is_loopback()
                {
                    return Some(ip);
                }
            }
        }
    }
    None
}

/// `2026-11-28T17:39:31.508069401Z` as (`2026-11-28T17:39:31`, 508069401): the
/// fraction has a varying number of digits, so plain string order is wrong.
fn created_key(created_at: &str) -> (String, u32) {
    let (seconds, rest) = match created_at.split_once('.') {
        Some((seconds, rest)) => (seconds, rest),
        None => (created_at.trim_end_matches('Z'), ""),
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).take(9).collect();
    let nanos = if digits.is_empty() { 0 } else { format!("{digits:0<9}").parse().unwrap_or(0) };
    (seconds.trim_end_matches('Z').to_string(), nanos)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn creation_keys_order_fractions_correctly() {
        assert!(created_key("2026-11-28T17:45:17.98367053Z") < created_key("2026-11-28T17:45:17.983670531Z"));
        assert!(created_key("2026-11-28T17:45:17Z") < created_key("2026-11-28T17:45:17.1Z"));
    }

    #[test]
    fn addresses_prefer_ipv4_on_lxd_nics() {
        let json = r#"[{"name":"a","status":"Running","created_at":"2026-01-01T00:00:00Z","config":{},
          "expanded_config":{"user.proxy":"https://p.example.com"},
          "state":{"network":{
            "docker0":{"addresses":[{"family":"inet","address":"172.17.0.1","scope":"global"}],"host_name":"","type":"broadcast"},
            "eth0":{"addresses":[{"family":"inet6","address":"fd42::5","scope":"global"},{"family":"inet","address":"10.0.0.5","scope":"global"}],"host_name":"veth1","type":"broadcast"},
            "lo":{"addresses":[{"family":"inet","address":"127.0.0.1","scope":"local"}],"host_name":"","type":"loopback"}}}},
          {"name":"b","status":"Running","created_at":"","config":{"user.proxy":"tcp://1:2"},"state":{"network":{
            "eth0":{"addresses":[{"family":"inet6","address":"fd42::6","scope":"global"},{"family":"inet6","address":"fe80::1","scope":"link"}],"host_name":"veth2"}}}},
          {"name":"c","status":"Stopped","created_at":"","config":{},"state":null}]"#;
        let list = parse(json, "t").unwrap();
        assert_eq!(list[0].address, Some("10.0.0.5".parse().unwrap()));
        assert_eq!(list[0].label.as_deref(), Some("https://p.example.com"));
        assert_eq!(list[1].address, Some("fd42::6".parse().unwrap()));
        assert_eq!((list[2].running, list[2].address, list[2].label.clone()), (false, None, None));
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let err = parse("{", "stdin").unwrap_err();
        assert!(err.to_string().contains("stdin") && err.to_string().contains("lxc list --format=json"), "{err}");
    }
}

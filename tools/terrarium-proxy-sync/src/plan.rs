//! From instances and host settings to the routes to publish: validation that needs the
//! host's settings, claims between instances, deterministic names. Pure code.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::Serialize;
use terrarium_common::config::validate::is_within_domain;

use crate::instances::Instance;
use crate::label::{self, Auth, Protocol, Rule, RuleError, Scheme};

/// What the host allows, from its config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The root domain; `@auth` hosts must be it or below it.
    pub root_domain: Option<String>,
    /// The management host; the only `@auth` host when there is no root domain, and
    /// where the shared sign-in callback lives.
    pub manage_domain: String,
    /// Host ports no `tcp://`/`udp://` rule may claim.
    pub reserved_ports: BTreeSet<u16>,
    /// `Err(reason)` when route auth cannot work on this host (no OIDC client yet).
    pub route_auth: Result<(), String>,
}

/// An HTTP route to publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpRoute {
    /// Router and service name.
    pub name: String,
    pub instance: String,
    pub rule: String,
    pub scheme: Scheme,
    pub host: String,
    pub path: Option<String>,
    /// `http://IP:PORT`.
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,
}

/// A TCP or UDP port to publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortRoute {
    pub name: String,
    pub instance: String,
    pub rule: String,
    pub protocol: Protocol,
    pub host_port: u16,
    /// `IP:PORT`.
    pub target: String,
}

impl PortRoute {
    /// The Traefik entrypoint: `tcp-10022`, `udp-1053`.
    pub fn entrypoint(&self) -> String {
        entrypoint_name(self.protocol, self.host_port)
    }
}

pub fn entrypoint_name(protocol: Protocol, port: u16) -> String {
    format!("{protocol}-{port}")
}

/// A rule that was not published (or a claim another instance contested).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub instance: String,
    pub rule: String,
    pub problem: String,
    pub fix: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: `{}`: {}; {}", self.instance, self.rule, self.problem, self.fix)
    }
}

/// An instance whose valid rules publish nothing right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unpublished {
    pub instance: String,
    pub reason: String,
}

/// Everything one sync publishes, sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub http: Vec<HttpRoute>,
    pub ports: Vec<PortRoute>,
    /// Rules not published, each with its reason and fix.
    pub rejected: Vec<Problem>,
    /// Rules published although another instance claims the same host or port too.
    pub contested: Vec<Problem>,
    pub unpublished: Vec<Unpublished>,
}

impl Plan {
    /// True when any published route needs the route-auth oauth2-proxy.
    pub fn needs_route_auth(&self) -> bool {
        self.http.iter().any(|route| route.auth.is_some())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum ClaimKey {
    Http(Scheme, String, Option<String>),
    Port(Protocol, u16),
}

/// Compute the plan. Instances are considered in creation order, so the instance
/// created first keeps a contested host or port, whether or not it runs right now (a
/// route never moves to another instance just because its owner was stopped).
pub fn plan(instances: &[Instance], settings: &Settings) -> Plan {
    let mut order: Vec<&Instance> = instances.iter().filter(|i| i.label.is_some()).collect();
    order.sort_by(|a, b| (&a.created, &a.name).cmp(&(&b.created, &b.name)));

    let mut plan = Plan::default();
    let mut claims: BTreeMap<ClaimKey, (String, String)> = BTreeMap::new();
    for instance in order {
        let label = instance.label.as_deref().unwrap_or_default();
        let mut accepted = 0usize;
        for (index, raw) in label::split_rules(label).into_iter().enumerate() {
            let reject = |plan: &mut Plan, err: RuleError| {
                plan.rejected.push(Problem {
                    instance: instance.name.clone(),
                    rule: raw.to_string(),
                    problem: err.problem,
                    fix: err.fix,
                });
            };
            let rule = match label::parse_rule(raw).and_then(|rule| check_with_settings(rule, settings)) {
                Ok(rule) => rule,
                Err(err) => {
                    reject(&mut plan, err);
                    continue;
                }
            };
            let key = match &rule {
                Rule::Http { scheme, host, path, .. } => ClaimKey::Http(*scheme, host.clone(), path.clone()),
                Rule::Port { protocol, host_port, .. } => ClaimKey::Port(*protocol, *host_port),
            };
            if let Some((owner, owner_rule)) = claims.get(&key) {
                let what = claim_description(&key);
                if owner == &instance.name {
                    reject(
                        &mut plan,
                        RuleError::new(
                            format!("{what} is already published by `{owner_rule}` in the same label"),
                            "remove the duplicate rule",
                        ),
                    );
                } else {
                    reject(
                        &mut plan,
                        RuleError::new(
                            format!("{what} is already claimed by instance {owner} (created earlier)"),
                            format!("choose another one, or remove it from {owner}: lxc config edit {owner}"),
                        ),
                    );
                    plan.contested.push(Problem {
                        instance: owner.clone(),
                        rule: owner_rule.clone(),
                        problem: format!(
                            "{what} is also claimed by instance {} (created later); {owner} keeps it",
                            instance.name
                        ),
                        fix: format!("remove the rule from one of them: lxc config edit {}", instance.name),
                    });
                }
                continue;
            }
            claims.insert(key, (instance.name.clone(), raw.to_string()));
            accepted += 1;
            let Some(address) = instance.address.filter(|_| instance.running) else { continue };
            push_route(&mut plan, instance, index, raw, rule, address);
        }
        if accepted > 0 && (!instance.running || instance.address.is_none()) {
            let reason = if instance.running { "running but has no global IP address yet" } else { "not running" };
            plan.unpublished.push(Unpublished { instance: instance.name.clone(), reason: reason.to_string() });
        }
    }
    plan.http.sort_by(|a, b| a.name.cmp(&b.name));
    plan.ports.sort_by(|a, b| a.name.cmp(&b.name));
    plan.unpublished.sort_by(|a, b| a.instance.cmp(&b.instance));
    plan
}

fn claim_description(key: &ClaimKey) -> String {
    match key {
        ClaimKey::Http(scheme, host, path) => format!("{}://{host}{}", scheme.as_str(), path.as_deref().unwrap_or("")),
        ClaimKey::Port(protocol, port) => format!("host port {port}/{protocol}"),
    }
}

/// The checks that depend on the host: `@auth` hosts and reserved ports.
fn check_with_settings(rule: Rule, settings: &Settings) -> Result<Rule, RuleError> {
    match &rule {
        Rule::Http { host, auth: Some(_), .. } => {
            if let Err(reason) = &settings.route_auth {
                return Err(RuleError::new(
                    format!("route auth is not available on this host: {reason}"),
                    "publish without @auth until it is set up",
                ));
            }
            let allowed = match &settings.root_domain {
                Some(root) => is_within_domain(host, root),
                None => host == &settings.manage_domain,
            };
            if !allowed {
                let scope = match &settings.root_domain {
                    Some(root) => format!("{root} or its subdomains"),
                    None => format!("{} (no root domain is configured)", settings.manage_domain),
                };
                return Err(RuleError::new(
                    format!("@auth works only for hosts on {scope}, not {host}"),
                    "use a host under the root domain, or drop @auth",
                ));
            }
        }
        Rule::Port { host_port, protocol, .. } if settings.reserved_ports.contains(host_port) => {
            return Err(RuleError::new(
                format!("host port {host_port}/{protocol} is reserved for the host's own services"),
                "choose another host port (the reserved ones are listed in docs/labels.md)",
            ));
        }
        _ => {}
    }
    Ok(rule)
}

fn push_route(plan: &mut Plan, instance: &Instance, index: usize, raw: &str, rule: Rule, address: IpAddr) {
    let ip = match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    match rule {
        Rule::Http { scheme, host, container_port, path, auth } => plan.http.push(HttpRoute {
            name: route_name(&instance.name, index, scheme.as_str(), &host.replace('.', "-")),
            instance: instance.name.clone(),
            rule: raw.to_string(),
            scheme,
            host,
            path,
            target: format!("http://{ip}:{container_port}"),
            auth,
        }),
        Rule::Port { protocol, host_port, container_port } => plan.ports.push(PortRoute {
            name: route_name(&instance.name, index, protocol.as_str(), &host_port.to_string()),
            instance: instance.name.clone(),
            rule: raw.to_string(),
            protocol,
            host_port,
            target: format!("{ip}:{container_port}"),
        }),
    }
}

/// `INSTANCE_INDEX_KIND_DETAIL`. LXD instance names never contain `_`, and the index
/// is the rule's position in its label, so names are unique; the rest is for people.
fn route_name(instance: &str, index: usize, kind: &str, detail: &str) -> String {
    format!("{instance}_{index}_{kind}_{detail}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    pub(crate) fn settings() -> Settings {
        Settings {
            root_domain: Some("example.com".into()),
            manage_domain: "manage.example.com".into(),
            reserved_ports: terrarium_common::ports::RESERVED.iter().copied().collect(),
            route_auth: Ok(()),
        }
    }

    fn instance(name: &str, created: &str, label: &str, ip: Option<&str>) -> Instance {
        Instance {
            name: name.into(),
            created: (created.into(), 0),
            running: ip.is_some(),
            address: ip.map(|ip| ip.parse().unwrap()),
            label: Some(label.into()),
        }
    }

    #[test]
    fn the_first_created_instance_keeps_a_contested_host_and_both_are_reported() {
        let plan = plan(
            &[
                instance("young", "2026-02", "https://app.example.com, tcp://10022:22", Some("10.0.0.2")),
                instance("old", "2026-01", "https://APP.example.com:8080\ntcp://10022:2222", Some("10.0.0.1")),
            ],
            &settings(),
        );
        assert_eq!(plan.http.len(), 1);
        assert_eq!(plan.http[0].target, "http://10.0.0.1:8080");
        assert_eq!(plan.ports[0].target, "10.0.0.1:2222");
        assert_eq!(plan.rejected.iter().map(|p| p.instance.as_str()).collect::<Vec<_>>(), ["young", "young"]);
        assert_eq!(plan.contested.iter().map(|p| p.instance.as_str()).collect::<Vec<_>>(), ["old", "old"]);
        assert!(plan.rejected[0].problem.contains("claimed by instance old"), "{}", plan.rejected[0]);
    }

    #[test]
    fn one_bad_rule_does_not_stop_the_others() {
        let plan = plan(
            &[instance("a", "1", "https://bad_host, https://ok.example.com/api, tcp://22:22", Some("10.0.0.1"))],
            &settings(),
        );
        assert_eq!(plan.http.len(), 1);
        assert_eq!(plan.http[0].path.as_deref(), Some("/api"));
        assert_eq!(plan.rejected.len(), 2);
        assert!(plan.rejected[1].problem.contains("reserved"), "{}", plan.rejected[1]);
    }

    #[test]
    fn auth_needs_the_root_domain_or_the_manage_host() {
        let mut s = settings();
        let p = plan(
            &[instance("a", "1", "https://x.other.org@auth, https://x.example.com@auth:ops", Some("10.0.0.1"))],
            &s,
        );
        assert_eq!((p.http.len(), p.rejected.len()), (1, 1));
        s.root_domain = None;
        let p = plan(
            &[instance("a", "1", "https://x.example.com@auth, https://manage.example.com/app@auth", Some("10.0.0.1"))],
            &s,
        );
        assert_eq!(p.http.iter().map(|r| r.host.as_str()).collect::<Vec<_>>(), ["manage.example.com"]);
        s.route_auth = Err("no OIDC client".into());
        let p = plan(&[instance("a", "1", "https://manage.example.com@auth", Some("10.0.0.1"))], &s);
        assert!(p.rejected[0].problem.contains("no OIDC client"));
    }

    #[test]
    fn stopped_instances_publish_nothing_but_keep_their_claims() {
        let plan = plan(
            &[
                instance("old", "1", "https://a.example.com", None),
                instance("new", "2", "https://a.example.com", Some("10.0.0.2")),
            ],
            &settings(),
        );
        assert!(plan.http.is_empty());
        assert_eq!(plan.unpublished, vec![Unpublished { instance: "old".into(), reason: "not running".into() }]);
        assert_eq!(plan.rejected[0].instance, "new");
    }

    #[test]
    fn ipv6_targets_are_bracketed_and_names_are_unique() {
        let plan = plan(
            &[instance("a", "1", "https://a.example.com, http://a.example.com, udp://1053:53", Some("fd42::1"))],
            &settings(),
        );
        assert_eq!(plan.http[0].target, "http://[fd42::1]:80");
        assert_eq!(plan.ports[0].target, "[fd42::1]:53");
        assert_eq!(plan.ports[0].entrypoint(), "udp-1053");
        let names: BTreeSet<_> = plan.http.iter().map(|r| r.name.clone()).collect();
        assert_eq!(names.len(), 2);
    }
}

//! From instances and host settings to the routes to publish: validation that needs the
//! host's settings, claims between instances, deterministic names. Pure code.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::Serialize;

use crate::instances::Instance;
use crate::label::{self, Auth, Protocol, Rule, RuleError, Scheme};

/// What the host allows, from its config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Host ports no `tcp://`/`udp://` rule may claim.
    pub reserved_ports: BTreeSet<u16>,
    /// `Err(reason)` when route auth cannot work on this host (no OIDC client yet).
    pub route_auth: Result<(), String>,
    /// Terrarium's own host names, each with what it serves: no rule may publish on them.
    pub reserved_hosts: BTreeMap<String, String>,
    /// Host ports a socket on the host already holds (Traefik's published entrypoints
    /// left out): Traefik could not bind them.
    pub ports_in_use: BTreeSet<(u16, Protocol)>,
    /// The most rules one label may hold; later ones are refused.
    pub max_rules_per_label: usize,
    /// The most `tcp://`/`udp://` host ports all labels together may claim.
    pub max_ports_per_host: usize,
}

impl Settings {
    /// The host names Terrarium serves itself (from `domains.*`): manage (Cockpit and
    /// its sign-in), proxy (the Traefik dashboard), lxd, and auth when
    /// ZITADEL runs here (in oidc mode the issuer lives elsewhere).
    pub fn reserved_hosts(domains: &terrarium_common::config::Domains, local_idp: bool) -> BTreeMap<String, String> {
        let mut hosts = BTreeMap::from([
            (domains.manage.clone(), "Terrarium's management host (Cockpit and its sign-in)".to_string()),
            (domains.proxy.clone(), "Terrarium's proxy host (the Traefik dashboard)".to_string()),
            (domains.lxd.clone(), "Terrarium's LXD API host".to_string()),
        ]);
        if local_idp {
            hosts.insert(domains.auth.clone(), "Terrarium's identity provider host (ZITADEL)".to_string());
        }
        hosts
    }
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

    /// The hosts with an `@auth` route, sorted, each once: each signs in on its own.
    pub fn auth_hosts(&self) -> Vec<String> {
        let hosts: BTreeSet<&str> =
            self.http.iter().filter(|route| route.auth.is_some()).map(|route| route.host.as_str()).collect();
        hosts.into_iter().map(str::to_string).collect()
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
    let mut port_claims = 0usize;
    for instance in order {
        let label = instance.label.as_deref().unwrap_or_default();
        let mut accepted = 0usize;
        let rules = label::split_rules(label);
        if let Some(first_excess) = rules.get(settings.max_rules_per_label) {
            // One problem for all of them: a label of 5,000 rules must not become 5,000 entries.
            plan.rejected.push(Problem {
                instance: instance.name.clone(),
                rule: first_excess.to_string(),
                problem: format!(
                    "the label has {} rules, more than the {} one label may hold; this rule and the {} after it are not published",
                    rules.len(),
                    settings.max_rules_per_label,
                    rules.len() - settings.max_rules_per_label - 1
                ),
                fix: "remove rules from the label (or raise proxy.max_rules_per_label in /etc/terrarium/config.yaml)".to_string(),
            });
        }
        for (index, raw) in rules.into_iter().enumerate().take(settings.max_rules_per_label) {
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
            if matches!(rule, Rule::Port { .. }) && port_claims >= settings.max_ports_per_host {
                reject(
                    &mut plan,
                    RuleError::new(
                        format!("the host already publishes {port_claims} tcp/udp ports, the most it allows"),
                        "remove port rules from other labels (or raise proxy.max_ports_per_host in /etc/terrarium/config.yaml)",
                    ),
                );
                continue;
            }
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
            if matches!(key, ClaimKey::Port(..)) {
                port_claims += 1;
            }
            claims.insert(key, (instance.name.clone(), raw.to_string()));
            accepted += 1;
            let Some(address) = instance.address.filter(|_| instance.running) else {
                continue;
            };
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

/// The checks that depend on the host: Terrarium's own hosts, `@auth` hosts, reserved
/// ports and ports already in use.
fn check_with_settings(rule: Rule, settings: &Settings) -> Result<Rule, RuleError> {
    match &rule {
        Rule::Http { host, .. } if settings.reserved_hosts.contains_key(host) => {
            // Every path: `/` would be the whole host, and any prefix would take paths
            // from the admin gate (Cockpit, `/oauth2/`) or the identity provider.
            let role = &settings.reserved_hosts[host];
            return Err(RuleError::new(
                format!("{host} is {role}; labels cannot publish on it (no path either)"),
                "publish the service on a host name of its own, e.g. app.<your domain>",
            ));
        }
        Rule::Http { auth: Some(_), .. } => {
            if let Err(reason) = &settings.route_auth {
                return Err(RuleError::new(
                    format!("route auth is not available on this host: {reason}"),
                    "publish without @auth until it is set up",
                ));
            }
            // Any other host may have it: each protected host signs in on its own, with
            // a cookie for that host alone (render/oauth2_proxy.rs).
        }
        Rule::Port { host_port, protocol, .. } if settings.reserved_ports.contains(host_port) => {
            return Err(RuleError::new(
                format!("host port {host_port}/{protocol} is reserved for the host's own services"),
                "choose another host port (the reserved ones are listed in docs/labels.md)",
            ));
        }
        Rule::Port { host_port, protocol, .. } if settings.ports_in_use.contains(&(*host_port, *protocol)) => {
            return Err(RuleError::new(
                format!(
                    "host port {host_port}/{protocol} is already in use on the host (a service listens on it; Traefik could not bind it)"
                ),
                format!(
                    "choose another host port, or stop what holds it (`ss -lnp{} 'sport = :{host_port}'` shows it)",
                    if *protocol == Protocol::Tcp { "t" } else { "u" }
                ),
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
            reserved_ports: terrarium_common::ports::RESERVED.iter().copied().collect(),
            route_auth: Ok(()),
            reserved_hosts: ["manage", "proxy", "lxd", "auth"]
                .map(|h| (format!("{h}.example.com"), format!("the {h} host")))
                .into(),
            ports_in_use: BTreeSet::new(),
            max_rules_per_label: 32,
            max_ports_per_host: 256,
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
    fn auth_works_on_any_host_but_terrariums_own_and_only_with_a_client() {
        let mut s = settings();
        let p = plan(
            &[instance(
                "a",
                "1",
                "https://x.other.org@auth, https://x.example.com@auth:ops, https://manage.example.com/app@auth",
                Some("10.0.0.1"),
            )],
            &s,
        );
        assert_eq!(p.http.iter().map(|r| r.host.as_str()).collect::<Vec<_>>(), ["x.other.org", "x.example.com"]);
        assert!(p.rejected[0].problem.contains("is the manage host"), "{}", p.rejected[0]);
        s.route_auth = Err("no OIDC client".into());
        let p = plan(&[instance("a", "1", "https://x.example.com@auth", Some("10.0.0.1"))], &s);
        assert!(p.rejected[0].problem.contains("no OIDC client"));
    }

    #[test]
    fn terrariums_own_hosts_are_refused_on_every_path_and_the_rest_publishes() {
        let label = "https://manage.example.com/cockpit, https://MANAGE.example.com:9090/oauth2/callback, https://auth.example.com/ui/login, \
                     https://proxy.example.com/api, http://lxd.example.com, https://manage.example.com/app@auth, https://app.example.com";
        let p = plan(&[instance("evil", "1", label, Some("10.0.0.1"))], &settings());
        assert_eq!(p.http.iter().map(|r| r.host.as_str()).collect::<Vec<_>>(), ["app.example.com"]);
        assert_eq!(p.rejected.len(), 6, "{:?}", p.rejected);
        for problem in &p.rejected {
            let host =
                problem.rule.split("://").nth(1).unwrap().split(['/', ':', '@']).next().unwrap().to_ascii_lowercase();
            assert!(problem.problem.starts_with(&format!("{host} is the ")), "{problem}");
            assert!(problem.fix.contains("host name of its own"), "{problem}");
        }
        // Another instance's routes are untouched by the bad label.
        let p = plan(
            &[
                instance("evil", "1", label, Some("10.0.0.1")),
                instance("good", "2", "https://b.example.com", Some("10.0.0.2")),
            ],
            &settings(),
        );
        assert_eq!(p.http.len(), 2);
    }

    #[test]
    fn no_container_router_can_outrank_an_explicit_priority() {
        let longest = format!(
            "https://{}.example.com/{}",
            ["a".repeat(63), "b".repeat(63), "c".repeat(63)].join("."),
            "p".repeat(label::MAX_PATH_LEN - 1)
        );
        let p = plan(&[instance("a", "1", &longest, Some("10.0.0.1"))], &settings());
        let rendered = crate::render::dynamic::render(&p);
        let rule = rendered.lines().find(|l| l.trim_start().starts_with("rule:")).unwrap();
        // Traefik's default priority is the rule's length.
        assert!(
            rule.len() < 2_000 && (rule.len() as u32) < terrarium_common::ports::traefik::ROUTE_AUTH_PRIORITY,
            "{}",
            rule.len()
        );
    }

    #[test]
    fn ports_in_use_are_refused_with_the_way_to_find_the_holder() {
        let mut s = settings();
        s.ports_in_use = [(53, Protocol::Udp), (5000, Protocol::Tcp)].into();
        let p =
            plan(&[instance("a", "1", "udp://53:53, tcp://53:53, tcp://5000:80, udp://5000:80", Some("10.0.0.1"))], &s);
        let published: Vec<String> = p.ports.iter().map(|r| r.entrypoint()).collect();
        assert_eq!(published, ["tcp-53", "udp-5000"]);
        assert!(p.rejected[0].problem.contains("53/udp is already in use"), "{}", p.rejected[0]);
        assert!(p.rejected[0].fix.contains("ss -lnpu 'sport = :53'"), "{}", p.rejected[0]);
        assert!(p.rejected[1].fix.contains("ss -lnpt 'sport = :5000'"), "{}", p.rejected[1]);
    }

    #[test]
    fn labels_and_the_host_have_rule_limits() {
        let mut s = settings();
        s.max_rules_per_label = 3;
        s.max_ports_per_host = 4;
        let many: Vec<String> = (0..5000).map(|i| format!("tcp://{}:22", 20000 + i)).collect();
        let p = plan(
            &[
                instance("big", "1", &many.join(", "), Some("10.0.0.1")),
                instance("next", "2", "tcp://30000:1, tcp://30001:1, https://n.example.com", Some("10.0.0.2")),
            ],
            &s,
        );
        assert_eq!(p.ports.iter().map(|r| r.host_port).collect::<Vec<_>>(), [20000, 20001, 20002, 30000]);
        assert_eq!(p.http.len(), 1, "http rules are not counted against the port limit");
        assert_eq!(p.rejected.len(), 2, "{:?}", p.rejected);
        assert_eq!(p.rejected[0].rule, "tcp://20003:22");
        assert!(
            p.rejected[0].problem.contains("5000 rules, more than the 3")
                && p.rejected[0].problem.contains("4996 after it"),
            "{}",
            p.rejected[0]
        );
        assert!(p.rejected[0].fix.contains("proxy.max_rules_per_label"));
        assert_eq!(p.rejected[1].rule, "tcp://30001:1");
        assert!(p.rejected[1].fix.contains("proxy.max_ports_per_host"), "{}", p.rejected[1]);
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

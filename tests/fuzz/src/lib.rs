//! Checks the fuzz targets share: the host settings they plan with, a label rule
//! written back as label text, and the properties every plan and its rendered Traefik
//! file must have whatever the labels and the instance list say.
//!
//! A failed check panics: libFuzzer reports it as a crash and keeps the input.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde_json::Value;
use terrarium_common::config::validate::is_hostname;
use terrarium_proxy_sync::instances::Instance;
use terrarium_proxy_sync::label::{Auth, Protocol, Rule, parse_rule};
use terrarium_proxy_sync::plan::{Plan, Settings};
use terrarium_proxy_sync::render::dynamic;

/// A host like the tests' one: a root domain, Terrarium's four own hosts, the reserved
/// ports, one port in use and small limits (so the fuzzer reaches them).
pub fn settings() -> Settings {
    Settings {
        reserved_ports: terrarium_common::ports::RESERVED.iter().copied().collect(),
        route_auth: Ok(()),
        reserved_hosts: ["manage", "proxy", "lxd", "auth"]
            .map(|h| (format!("{h}.example.com"), format!("the {h} host")))
            .into(),
        ports_in_use: [(5353, Protocol::Udp), (10080, Protocol::Tcp)].into(),
        max_rules_per_label: 8,
        max_ports_per_host: 4,
    }
}

/// The rule written back as label text, every part explicit (the port, the path).
pub fn label_text(rule: &Rule) -> String {
    match rule {
        Rule::Http { scheme, host, container_port, path, auth } => {
            let auth = match auth {
                None => String::new(),
                Some(Auth::AnyUser) => "@auth".to_string(),
                Some(Auth::Groups(groups)) => format!("@auth:{}", groups.join(",")),
            };
            format!("{}://{host}:{container_port}{}{auth}", scheme.as_str(), path.as_deref().unwrap_or(""))
        }
        Rule::Port { protocol, host_port, container_port } => format!("{protocol}://{host_port}:{container_port}"),
    }
}

/// What every accepted rule must be: a valid lower-case host, a path that cannot end a
/// backtick-quoted Traefik value, ports from 1; and written back, the same rule again.
pub fn check_rule(raw: &str, rule: &Rule) {
    match rule {
        Rule::Http { host, container_port, path, auth, .. } => {
            assert!(is_hostname(host) && host.to_ascii_lowercase() == *host, "{raw:?}: host {host:?}");
            assert!(*container_port > 0, "{raw:?}: container port 0");
            if let Some(path) = path {
                assert!(path.starts_with('/') && path != "/", "{raw:?}: path {path:?}");
                assert!(
                    !path.chars().any(|c| c.is_control() || c.is_whitespace() || "`\"\\?#@".contains(c)),
                    "{raw:?}: path {path:?} holds a character the Traefik rule cannot quote"
                );
            }
            if let Some(Auth::Groups(groups)) = auth {
                assert!(!groups.is_empty(), "{raw:?}: @auth: with no group");
                assert!(groups.windows(2).all(|w| w[0] < w[1]), "{raw:?}: groups not sorted and unique: {groups:?}");
                assert!(groups.iter().all(|g| !g.is_empty() && !g.contains('+')), "{raw:?}: groups {groups:?}");
            }
        }
        Rule::Port { host_port, container_port, .. } => {
            assert!(*host_port > 0 && *container_port > 0, "{raw:?}: port 0");
        }
    }
    let text = label_text(rule);
    assert_eq!(parse_rule(&text).as_ref(), Ok(rule), "{raw:?} parsed, but written back as {text:?} it does not");
}

/// LXD's instance names (letters, digits, hyphens; a letter first; 63 at most), all
/// different. Route names are unique only for such lists (plan::route_name).
pub fn lxd_names(instances: &[Instance]) -> bool {
    let names: BTreeSet<&str> = instances.iter().map(|i| i.name.as_str()).collect();
    names.len() == instances.len()
        && names.iter().all(|name| {
            name.len() <= 63
                && name.starts_with(|c: char| c.is_ascii_alphabetic())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn target_ip(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// The properties of any plan: nothing on Terrarium's own hosts or reserved or busy
/// ports, `@auth` only with route auth, one owner per host+path and per port,
/// the port limit kept, routes only to running instances with an address, and each
/// route's rule re-parsing to the route. `unique_names`: also check route names.
pub fn check_plan(instances: &[Instance], settings: &Settings, plan: &Plan, unique_names: bool) {
    let mut names = BTreeSet::new();
    let mut http_claims = BTreeSet::new();
    // Sign-in may send a browser back to every protected host and to nothing else, and
    // the session cookie is never for a domain.
    let route_auth =
        terrarium_proxy_sync::render::oauth2_proxy::config(&terrarium_proxy_sync::render::oauth2_proxy::RouteAuth {
            issuer: "https://auth.example.com".into(),
            client_id: "routes".into(),
            client_secret: terrarium_common::secret::Secret::new("s"),
            cookie_secret: terrarium_common::secret::Secret::new("c"),
            hosts: plan.auth_hosts(),
        });
    assert!(!route_auth.contains("cookie_domain"), "{route_auth}");
    for route in &plan.http {
        assert!(
            !settings.reserved_hosts.contains_key(&route.host),
            "published on Terrarium's own host {}: {route:?}",
            route.host
        );
        assert!(http_claims.insert((route.scheme, &route.host, &route.path)), "host+path published twice: {route:?}");
        if route.auth.is_some() {
            assert!(settings.route_auth.is_ok(), "@auth published without route auth: {route:?}");
            assert!(
                route_auth.contains(&format!("{:?}", route.host)),
                "sign-in cannot return to {}: {route_auth}",
                route.host
            );
        }
        let Ok(Rule::Http { scheme, host, container_port, path, auth }) = parse_rule(&route.rule) else {
            panic!("the route's own rule does not parse as http: {route:?}");
        };
        assert_eq!((scheme, &host, &path, &auth), (route.scheme, &route.host, &route.path, &route.auth), "{route:?}");
        assert!(
            running_addresses(instances, &route.instance)
                .any(|a| route.target == format!("http://{}:{container_port}", target_ip(a))),
            "http route to {} which is not the running instance's address: {route:?}",
            route.target
        );
        if unique_names {
            assert!(names.insert(route.name.clone()), "route name {} used twice", route.name);
        }
    }
    let mut port_claims = BTreeSet::new();
    for route in &plan.ports {
        let key = (route.host_port, route.protocol);
        assert!(!settings.reserved_ports.contains(&route.host_port), "published on a reserved port: {route:?}");
        assert!(!settings.ports_in_use.contains(&key), "published on a port in use: {route:?}");
        assert!(port_claims.insert(key), "host port published twice: {route:?}");
        let Ok(Rule::Port { protocol, host_port, container_port }) = parse_rule(&route.rule) else {
            panic!("the route's own rule does not parse as a port rule: {route:?}");
        };
        assert_eq!((protocol, host_port), (route.protocol, route.host_port), "{route:?}");
        assert!(
            running_addresses(instances, &route.instance)
                .any(|a| route.target == format!("{}:{container_port}", target_ip(a))),
            "port route to {} which is not the running instance's address: {route:?}",
            route.target
        );
        if unique_names {
            assert!(names.insert(route.name.clone()), "route name {} used twice", route.name);
        }
    }
    assert!(port_claims.len() <= settings.max_ports_per_host, "{} ports published", port_claims.len());
    for problem in plan.rejected.iter().chain(&plan.contested) {
        assert!(!problem.problem.is_empty() && !problem.fix.is_empty(), "a problem without its text: {problem:?}");
    }
    check_rendered(plan, unique_names);
}

/// The addresses of the running instances called `name` (one, but for a fuzzed list
/// that repeats a name, which LXD's never does).
fn running_addresses<'a>(instances: &'a [Instance], name: &'a str) -> impl Iterator<Item = IpAddr> + 'a {
    instances.iter().filter(move |i| i.name == name && i.running).filter_map(|i| i.address)
}

/// The rendered dynamic file is YAML with a router and a service per route, and every
/// Traefik rule quotes exactly the route's host (and path).
fn check_rendered(plan: &Plan, unique_names: bool) {
    let text = dynamic::render(plan);
    assert!(!text.contains("# render error"), "the dynamic file did not render: {text}");
    assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "a control character in the dynamic file: {text:?}");
    let parsed: Value = terrarium_common::yaml::from_str(&text, "dynamic.yml")
        .unwrap_or_else(|err| panic!("the rendered dynamic file is not YAML: {err}\n{text}"));
    if !unique_names {
        return;
    }
    for route in &plan.http {
        let router = &parsed["http"]["routers"][&route.name];
        let expected = match &route.path {
            Some(path) => format!("Host(`{}`) && PathPrefix(`{path}`)", route.host),
            None => format!("Host(`{}`)", route.host),
        };
        assert_eq!(router["rule"].as_str(), Some(expected.as_str()), "router {}: {router}", route.name);
        assert_eq!(expected.matches('`').count(), if route.path.is_some() { 4 } else { 2 }, "{expected}");
        let url = &parsed["http"]["services"][&route.name]["loadBalancer"]["servers"][0]["url"];
        assert_eq!(url.as_str(), Some(route.target.as_str()), "service {}", route.name);
    }
    for route in &plan.ports {
        let section = route.protocol.as_str();
        let address = &parsed[section]["services"][&route.name]["loadBalancer"]["servers"][0]["address"];
        assert_eq!(address.as_str(), Some(route.target.as_str()), "{section} service {}", route.name);
    }
}

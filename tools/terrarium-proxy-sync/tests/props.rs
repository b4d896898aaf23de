//! Property tests: no label panics the parser; every accepted rule renders
//! schema-valid Traefik config; rendering is deterministic (input order does not matter).
#![allow(clippy::unwrap_used)] // tests and bench helpers may panic

mod common;

use std::collections::BTreeSet;
use std::sync::OnceLock;

use proptest::prelude::*;
use terrarium_proxy_sync::instances::Instance;
use terrarium_proxy_sync::label::{parse_rule, split_rules};
use terrarium_proxy_sync::plan::{Settings, plan};
use terrarium_proxy_sync::render::{dynamic, entrypoints};

fn schemas() -> &'static common::Schemas {
    static SCHEMAS: OnceLock<common::Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(common::Schemas::load)
}

fn settings() -> Settings {
    Settings {
        reserved_ports: terrarium_common::ports::RESERVED.iter().copied().collect(),
        route_auth: Ok(()),
        reserved_hosts: [("manage.example.com".to_string(), "the management host".to_string())].into(),
        ports_in_use: [(5353, terrarium_proxy_sync::label::Protocol::Udp)].into(),
        max_rules_per_label: 32,
        max_ports_per_host: 256,
    }
}

/// Mostly well-formed rules, with some noise mixed in.
fn rule() -> impl Strategy<Value = String> {
    let host = "[a-zA-Z0-9]{1,6}(\\.[a-z0-9-]{1,6}){0,2}\\.(example\\.com|other\\.org)";
    let http = (
        prop_oneof!["https", "http", "HTTPS"],
        host,
        prop::option::of(1u16..),
        prop::option::of("/[a-zA-Z0-9/._~-]{0,12}"),
        prop::option::of(prop_oneof![Just("@auth".to_string()), "@auth:[a-z._-]{1,5}(,[A-Za-z0-9]{1,4}){0,2}"]),
    )
        .prop_map(|(scheme, host, port, path, auth)| {
            format!(
                "{scheme}://{host}{}{}{}",
                port.map(|p| format!(":{p}")).unwrap_or_default(),
                path.unwrap_or_default(),
                auth.unwrap_or_default()
            )
        });
    let port = (prop_oneof!["tcp", "udp"], 1u16.., 1u16..)
        .prop_map(|(proto, host, container)| format!("{proto}://{host}:{container}"));
    prop_oneof![4 => http, 2 => port, 1 => ".{0,30}"]
}

fn label() -> impl Strategy<Value = String> {
    prop::collection::vec(rule(), 1..4)
        .prop_flat_map(|rules| {
            let n = rules.len();
            (Just(rules), prop::collection::vec(prop_oneof![Just(", "), Just("\n"), Just(",")], n))
        })
        .prop_map(|(rules, seps)| rules.iter().zip(seps).map(|(r, s)| format!("{r}{s}")).collect())
}

fn instances() -> impl Strategy<Value = Vec<Instance>> {
    prop::collection::vec((label(), any::<bool>(), 0u8..250, 0u32..1000), 1..5).prop_map(|specs| {
        specs
            .into_iter()
            .enumerate()
            .map(|(i, (label, running, host, created))| Instance {
                name: format!("c{i}"),
                created: (format!("2026-01-01T00:00:{:02}", created % 60), created),
                running,
                address: Some(format!("10.0.0.{host}").parse().unwrap()),
                label: Some(label),
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn no_label_string_panics_the_parser(value in any::<String>()) {
        for rule in split_rules(&value) {
            let _ = parse_rule(rule);
        }
        let instance = Instance { name: "x".into(), created: ("t".into(), 0), running: true, address: Some("10.0.0.1".parse().unwrap()), label: Some(value) };
        let _ = dynamic::render(&plan(&[instance], &settings()));
    }

    #[test]
    fn accepted_rules_render_schema_valid_and_deterministic(list in instances()) {
        let settings = settings();
        let first = plan(&list, &settings);
        let text = dynamic::render(&first);
        common::Schemas::check(&schemas().dynamic, &text, "dynamic file");

        let ports: BTreeSet<_> = first.ports.iter().map(|r| (r.host_port, r.protocol)).collect();
        let (static_text, _) = entrypoints::splice(common::STATIC, &entrypoints::block_lines(&ports), "traefik.yml").unwrap();
        common::Schemas::check(&schemas().static_config, &static_text, "static file");

        let mut reversed = list.clone();
        reversed.reverse();
        let again = plan(&reversed, &settings);
        prop_assert_eq!(&again, &first);
        prop_assert_eq!(dynamic::render(&again), text);
    }
}

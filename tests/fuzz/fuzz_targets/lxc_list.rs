//! The instance list proxy sync reads from `lxc list --format=json`, then planned.
//!
//! A list that parses: a stopped instance has no address, an address is never
//! loopback, the creation key's nanoseconds fit in a second; and the plan of those
//! instances has every property of `terrarium_fuzz::check_plan` (route names unique
//! when the names are ones LXD allows). A list that does not parse: the error names
//! its origin and the command whose output it must be.
#![no_main]

use libfuzzer_sys::fuzz_target;
use terrarium_fuzz::{check_plan, lxd_names, settings};
use terrarium_proxy_sync::instances::parse;
use terrarium_proxy_sync::plan::plan;

const ORIGIN: &str = "fuzz/lxc-list.json";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse(text, ORIGIN) {
        Ok(instances) => {
            for instance in &instances {
                assert!(
                    instance.running || instance.address.is_none(),
                    "a stopped instance with an address: {instance:?}"
                );
                assert!(!instance.address.is_some_and(|a| a.is_loopback()), "a loopback address: {instance:?}");
                assert!(instance.created.1 < 1_000_000_000, "nanoseconds past a second: {instance:?}");
            }
            let settings = settings();
            let planned = plan(&instances, &settings);
            check_plan(&instances, &settings, &planned, lxd_names(&instances));
        }
        Err(err) => {
            let message = err.to_string();
            assert!(message.contains(ORIGIN) && message.contains("lxc list --format=json"), "{message}");
        }
    }
});

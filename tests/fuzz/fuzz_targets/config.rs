//! `/etc/terrarium/config.yaml`: loading (migration from schema 1, strict parsing) and
//! validation.
//!
//! A config that loads must validate, save as YAML that loads to the same config, and
//! give Ansible its variables. One that does not must say where: every error names the
//! origin, and a validation error names its dotted key (and the message shows it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use terrarium_common::config::{Config, ConfigError, ansible_vars};

const ORIGIN: &str = "fuzz/config.yaml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Config::from_yaml(text, ORIGIN) {
        Ok(config) => {
            config.validate().unwrap_or_else(|err| panic!("loaded, yet does not validate: {err}"));
            let saved = config.to_yaml().unwrap_or_else(|err| panic!("loaded, yet cannot be saved: {err}"));
            let again = Config::from_yaml(&saved, "saved")
                .unwrap_or_else(|err| panic!("the saved config does not load: {err}\n{saved}"));
            assert_eq!(again, config, "the saved config loads as another config:\n{saved}");
            assert!(!ansible_vars(&config).is_empty());
        }
        Err(err) => {
            let message = err.to_string();
            assert!(message.contains(ORIGIN), "the error does not name the file: {message}");
            match &err {
                ConfigError::Invalid { key, problem, fix, .. } => {
                    assert!(!key.is_empty() && !problem.is_empty() && !fix.is_empty(), "{err:?}");
                    assert!(message.contains(key.as_str()), "the message does not show the key {key}: {message}");
                    assert_eq!(err.key(), Some(key.as_str()));
                }
                ConfigError::Yaml(yaml) => {
                    assert!(!yaml.message.is_empty(), "{err:?}");
                    assert!(yaml.key_path.as_deref() != Some(""), "an empty key path: {err:?}");
                }
                other => panic!("parsing text cannot fail with {other:?}"),
            }
        }
    }
});

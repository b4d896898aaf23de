//! Smoke test of the ufw sandbox: enable + allow + status inside it, host untouched.

use std::path::Path;
use std::process::Command;

use terrarium_testkit::{UfwSandbox, require};

/// What the host's firewall and ufw state look like (files and rules).
fn host_state() -> String {
    let mut state = String::new();
    for dir in ["/etc/ufw", "/lib/ufw"] {
        let mut files: Vec<_> = walk(Path::new(dir));
        files.sort();
        for file in files {
            state.push_str(&format!(
                "{}\n{}\n",
                file.display(),
                String::from_utf8_lossy(&std::fs::read(&file).unwrap_or_default())
            ));
        }
    }
    state.push_str(&std::fs::read_to_string("/etc/default/ufw").unwrap_or_default());
    for program in ["iptables", "ip6tables"] {
        let out = Command::new(require(program)).arg("-S").output().expect("list rules");
        state.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    state
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}

#[test]
fn enable_allow_and_status_stay_inside_the_sandbox() {
    let before = host_state();
    let sandbox = UfwSandbox::start();
    assert!(sandbox.status().contains("Status: inactive"), "starts from the package defaults");

    // Through the shim, the way a tool under test calls it.
    let shim = |args: &[&str]| {
        let out = Command::new("ufw").args(args).env("PATH", sandbox.path_env()).output().expect("run the ufw shim");
        assert!(out.status.success(), "ufw {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    shim(&["--force", "enable"]);
    shim(&["allow", "10022/tcp"]);
    let status = sandbox.status();
    assert!(status.contains("Status: active"), "{status}");
    assert!(status.lines().any(|l| l.starts_with("10022/tcp") && l.contains("ALLOW IN")), "{status}");
    let numbered = shim(&["status", "numbered"]);
    assert!(numbered.contains("[ 1] 10022/tcp"), "{numbered}");

    // The rules are real: the sandbox's iptables has ufw's chains and the port.
    let rules = sandbox.in_sandbox(require("iptables")).arg("-S").output().expect("iptables in the sandbox");
    let rules = String::from_utf8_lossy(&rules.stdout);
    assert!(rules.contains("ufw-user-input") && rules.contains("--dport 10022"), "{rules}");
    let user_rules = std::fs::read_to_string(sandbox.etc_ufw().join("user.rules")).expect("private user.rules");
    assert!(user_rules.contains("10022"));

    // The host saw nothing of it.
    assert_eq!(host_state(), before, "the host's ufw files and firewall rules are unchanged");

    let copies = sandbox.etc_ufw();
    drop(sandbox);
    assert!(!copies.exists(), "private copies removed on drop");
}

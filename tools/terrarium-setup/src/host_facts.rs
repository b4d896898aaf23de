//! Facts about the host read before anything is decided: the OS, whether root has a
//! usable password, the public IP, the host name. Each reader is a pure function over file text plus a
//! thin function that reads the file under the root prefix.

use std::net::{IpAddr, UdpSocket};

use terrarium_common::Paths;

/// The host's name as exports use it (the one reader, in terrarium-archive).
pub use terrarium_archive::keys::{HostNameError, host_name};

/// The supported host OS.
pub const SUPPORTED_OS: (&str, &str) = ("ubuntu", "24.04");

/// `ID` and `VERSION_ID` of an os-release file.
pub fn os_release_id(text: &str) -> (Option<String>, Option<String>) {
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
            .map(|v| v.trim().trim_matches('"').trim_matches('\'').to_string())
    };
    (field("ID"), field("VERSION_ID"))
}

/// Refuse anything but Ubuntu 24.04, naming what was found.
pub fn check_os(paths: &Paths) -> Result<(), String> {
    let path = paths.host("/etc/os-release");
    let text = std::fs::read_to_string(&path)
        .or_else(|_| std::fs::read_to_string(paths.host("/usr/lib/os-release")))
        .unwrap_or_default();
    let (id, version) = os_release_id(&text);
    match (id.as_deref(), version.as_deref()) {
        (Some(id), Some(version)) if (id, version) == SUPPORTED_OS => Ok(()),
        (id, version) => Err(format!(
            "this host runs {} {}, but Terrarium supports only Ubuntu 24.04 ({}); install on Ubuntu Server 24.04",
            id.unwrap_or("an unknown OS"),
            version.unwrap_or(""),
            path.display()
        )),
    }
}

/// Whether root's entry in a shadow file has a password that can log in (not empty,
/// not locked with `!`, not disabled with `*`).
pub fn shadow_root_has_password(text: &str) -> bool {
    text.lines()
        .find_map(|line| line.strip_prefix("root:"))
        .and_then(|rest| rest.split(':').next())
        .is_some_and(|hash| !hash.is_empty() && !hash.starts_with('!') && !hash.starts_with('*'))
}

/// Whether root has a usable password on the host under `paths`.
pub fn root_has_password(paths: &Paths) -> bool {
    std::fs::read_to_string(paths.host("/etc/shadow")).is_ok_and(|text| shadow_root_has_password(&text))
}

/// The address this host uses to reach the internet: the source address the kernel
/// picks for a route to a public address. No packet is sent (UDP connect only).
pub fn detect_public_ip() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// `203.0.113.7` as `203-0-113-7`, the form traefik.me resolves.
pub fn dashed_ip(ip: IpAddr) -> String {
    ip.to_string().replace(['.', ':'], "-")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn os_release_fields_are_read_with_or_without_quotes() {
        let text = "NAME=\"Ubuntu\"\nVERSION_ID=\"24.04\"\nID=ubuntu\nID_LIKE=debian\n";
        assert_eq!(os_release_id(text), (Some("ubuntu".into()), Some("24.04".into())));
        let debian = "ID=debian\nVERSION_ID=\"12\"\n";
        assert_eq!(os_release_id(debian), (Some("debian".into()), Some("12".into())));
    }

    #[test]
    fn only_ubuntu_2404_passes() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path());
        assert!(check_os(&paths).unwrap_err().contains("unknown OS"));
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/os-release"), "ID=debian\nVERSION_ID=\"12\"\n").unwrap();
        let err = check_os(&paths).unwrap_err();
        assert!(err.contains("debian 12"), "{err}");
        std::fs::write(dir.path().join("etc/os-release"), "ID=ubuntu\nVERSION_ID=\"24.04\"\n").unwrap();
        check_os(&paths).unwrap();
    }

    #[test]
    fn locked_and_empty_root_passwords_are_unusable() {
        assert!(shadow_root_has_password("root:$y$j9T$abc:19000:0:99999:7:::\n"));
        assert!(!shadow_root_has_password("root:*:19000:0:99999:7:::\n"));
        assert!(!shadow_root_has_password("root:!:19000:0:99999:7:::\n"));
        assert!(!shadow_root_has_password("root:!$6$locked:19000::::::\n"));
        assert!(!shadow_root_has_password("root::19000::::::\n"));
        assert!(!shadow_root_has_password("daemon:$6$x:1::::::\n"));
    }

    #[test]
    fn ips_are_dashed_for_traefik_me() {
        assert_eq!(dashed_ip("203.0.113.7".parse().unwrap()), "203-0-113-7");
        assert_eq!(dashed_ip("2001:db8::1".parse().unwrap()), "2001-db8--1");
    }
}

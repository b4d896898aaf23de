//! The offline `busybox` image: one static busybox, its applets as symlinks, an init that
//! brings eth0 up with udhcpc and runs /etc/rc.local (the start command of
//! [`super::Lxd::launch_with`]).

use std::path::{Path, PathBuf};

use terrarium_common::process::Cmd;

use crate::programs::require;
use crate::support::run_or_panic;

const INITTAB: &str = "::sysinit:/etc/init.d/rcS\n\
::respawn:/sbin/udhcpc -f -i eth0 -s /usr/share/udhcpc/default.script\n";

const RCS: &str = "#!/bin/sh\n\
mount -t proc proc /proc 2>/dev/null\n\
ip link set lo up\n\
ip link set eth0 up\n\
[ -x /etc/rc.local ] && /etc/rc.local\n\
exit 0\n";

// udhcpc gives $mask as a prefix length.
const DHCP_SCRIPT: &str = "#!/bin/sh\n\
case \"$1\" in\n\
  bound|renew)\n\
    ip addr flush dev \"$interface\"\n\
    ip addr add \"$ip/${mask:-24}\" dev \"$interface\"\n\
    [ -n \"$router\" ] && ip route replace default via \"${router%% *}\" dev \"$interface\"\n\
    ;;\n\
esac\n\
exit 0\n";

fn write(path: &Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("testkit: create {}: {e}", parent.display()));
    }
    std::fs::write(path, text)
        .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)))
        .unwrap_or_else(|e| panic!("testkit: write {}: {e}", path.display()));
}

fn lxd_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "aarch64",
        _ => "x86_64",
    }
}

/// Build the image as a unified tarball under `work`, return its path.
pub(super) fn build_busybox_image(work: &Path) -> PathBuf {
    let busybox = require("busybox");
    let rootfs = work.join("rootfs");
    for dir in [
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "etc/init.d",
        "proc",
        "sys",
        "dev",
        "tmp",
        "run",
        "root",
        "www",
        "var/log",
    ] {
        std::fs::create_dir_all(rootfs.join(dir)).unwrap_or_else(|e| panic!("testkit: create image dir {dir}: {e}"));
    }
    std::fs::copy(&busybox, rootfs.join("bin/busybox"))
        .unwrap_or_else(|e| panic!("testkit: copy {}: {e}", busybox.display()));
    let applets = run_or_panic(&Cmd::new(&busybox).arg("--list-full"));
    for applet in applets.lines().map(str::trim).filter(|a| !a.is_empty() && *a != "bin/busybox") {
        let link = rootfs.join(applet);
        if let Some(parent) = link.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let _ = std::os::unix::fs::symlink("/bin/busybox", &link);
    }
    write(&rootfs.join("etc/inittab"), INITTAB, 0o644);
    write(&rootfs.join("etc/init.d/rcS"), RCS, 0o755);
    write(&rootfs.join("usr/share/udhcpc/default.script"), DHCP_SCRIPT, 0o755);
    write(&rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n", 0o644);
    write(&rootfs.join("etc/group"), "root:x:0:\n", 0o644);
    let created = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    write(
        &work.join("metadata.yaml"),
        &format!(
            "architecture: {}\ncreation_date: {created}\nproperties:\n  os: busybox\n  release: \"1\"\n  description: terrarium-testkit busybox\n",
            lxd_architecture()
        ),
        0o644,
    );
    let tarball = work.join("busybox-image.tar");
    run_or_panic(&Cmd::new("tar").arg("-C").arg(work).arg("-cf").arg(&tarball).args(["metadata.yaml", "rootfs"]));
    tarball
}

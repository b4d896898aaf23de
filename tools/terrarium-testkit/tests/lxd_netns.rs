//! Smoke test of the namespaced LXD: a busybox container gets an IPv4 and serves HTTP,
//! reachable from inside the namespace only.

use terrarium_testkit::{Lxd, require};

fn host_netns() -> std::path::PathBuf {
    std::fs::read_link("/proc/self/ns/net").expect("own netns")
}

#[test]
fn container_gets_an_ipv4_and_serves_http_inside_the_namespace() {
    let lxd = Lxd::start();
    assert_ne!(
        std::fs::read_link(format!("/proc/{}/ns/net", lxd.pid())).expect("lxd netns"),
        host_netns(),
        "LXD runs in its own netns"
    );

    let web = lxd.launch_with(
        "web",
        &[("user.proxy", "https://app.example.com:80")],
        "mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 80 -h /www",
    );
    assert!(web.parse::<std::net::Ipv4Addr>().is_ok(), "an IPv4: {web}");
    let plain = lxd.launch("plain", &[]);
    assert_ne!(web, plain);

    // The label is visible to a tool that lists containers.
    let list: serde_json::Value = serde_json::from_str(&lxd.lxc(&["list", "--format", "json"])).expect("lxc list json");
    let names: Vec<&str> = list.as_array().expect("array").iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, ["plain", "web"]);
    assert_eq!(list[1]["config"]["user.proxy"], "https://app.example.com:80");

    // HTTP from the namespace reaches the container (httpd may need a moment).
    let mut body = String::new();
    for _ in 0..50 {
        let out = lxd
            .in_netns(require("curl"))
            .args(["-sS", "--max-time", "2", &format!("http://{web}/")])
            .output()
            .expect("run curl");
        body = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(body.trim(), "hello-from-web");

    // A TCP echo service started with exec, after launch.
    lxd.exec("plain", &["sh", "-c", "setsid nc -lk -p 7000 -e cat </dev/null >/dev/null 2>&1 &"]);
    // The host's network does not see the bridge.
    let host_links = std::process::Command::new(require("ip")).args(["-br", "link"]).output().expect("ip link");
    assert!(!String::from_utf8_lossy(&host_links.stdout).contains("lxdbr0"), "lxdbr0 stays in the namespace");

    // Restart keeps the start command (it lives in the container's /etc/rc.local).
    lxd.lxc(&["restart", "--force", "web"]);
    let web_again = lxd.wait_ipv4("web");
    let mut ok = false;
    for _ in 0..50 {
        let out = lxd
            .in_netns(require("curl"))
            .args(["-sS", "--max-time", "2", &format!("http://{web_again}/")])
            .output()
            .expect("run curl");
        if String::from_utf8_lossy(&out.stdout).trim() == "hello-from-web" {
            ok = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(ok, "httpd is back after a restart");

    // A graceful stop works (busybox init halts on LXD's SIGPWR) and drops the address.
    let started = std::time::Instant::now();
    lxd.lxc(&["stop", "plain"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "graceful stop took {:?}", started.elapsed());
    assert_eq!(lxd.ipv4("plain"), None);

    let lxd_dir = lxd.lxd_dir().to_path_buf();
    let pid = lxd.pid();
    drop(lxd);
    assert!(!lxd_dir.exists(), "LXD_DIR removed on drop");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| s.contains(" Z ")).unwrap_or(true),
        "daemon gone"
    );
}

#[test]
fn two_daemons_side_by_side_are_isolated() {
    // Tests run in parallel, each with its own daemon: the same container name in two
    // daemons must not collide, and neither sees the other's containers.
    let started = std::time::Instant::now();
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(Lxd::start);
        let b = scope.spawn(Lxd::start);
        (a.join().expect("first daemon"), b.join().expect("second daemon"))
    });
    eprintln!("two daemons ready in {:?}", started.elapsed());
    let ip_a = a.launch("same", &[("user.which", "a")]);
    let ip_b = b.launch("same", &[("user.which", "b")]);
    assert!(!ip_a.is_empty() && !ip_b.is_empty());
    assert_eq!(a.lxc(&["config", "get", "same", "user.which"]).trim(), "a");
    assert_eq!(b.lxc(&["config", "get", "same", "user.which"]).trim(), "b");
    a.lxc(&["delete", "--force", "same"]);
    assert_eq!(a.lxc(&["list", "--format", "csv", "-c", "n"]).trim(), "");
    assert_eq!(b.lxc(&["list", "--format", "csv", "-c", "n"]).trim(), "same");
}

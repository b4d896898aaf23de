//! Smoke test of Traefik inside the LXD namespace: it routes by Host header to a
//! busybox httpd container and answers 404 for an unknown host.

use terrarium_testkit::{Lxd, Traefik};

#[test]
fn traefik_routes_by_host_header_to_a_container() {
    let lxd = Lxd::start();
    let ip = lxd.launch_with(
        "app",
        &[],
        "mkdir -p /www && echo hello-through-traefik > /www/index.html && exec httpd -f -p 80 -h /www",
    );

    let work = tempfile::tempdir().expect("tempdir");
    let dynamic = work.path().join("dynamic");
    std::fs::create_dir_all(&dynamic).expect("dynamic dir");
    std::fs::write(
        dynamic.join("app.yml"),
        format!(
            "http:\n  routers:\n    app:\n      rule: \"Host(`app.example.test`)\"\n      entryPoints: [web]\n      service: app\n  services:\n    app:\n      loadBalancer:\n        servers:\n          - url: \"http://{ip}:80\"\n"
        ),
    )
    .expect("write the dynamic config");
    let static_yaml = work.path().join("traefik.yml");
    std::fs::write(
        &static_yaml,
        format!(
            "entryPoints:\n  web:\n    address: \":80\"\nproviders:\n  file:\n    directory: {}\n    watch: true\nlog:\n  level: INFO\n",
            dynamic.display()
        ),
    )
    .expect("write the static config");

    let traefik = Traefik::start(&lxd, &static_yaml);
    assert_eq!(traefik.address(), "127.0.0.1:80");
    let body = traefik.wait_for_status("app.example.test", "/", 200);
    assert_eq!(body.trim(), "hello-through-traefik");
    let (status, _) = traefik.http_get("unknown.example.test", "/");
    assert_eq!(status, 404, "no route for another host");

    // A route added later is picked up (file provider watch).
    std::fs::write(
        dynamic.join("other.yml"),
        format!(
            "http:\n  routers:\n    other:\n      rule: \"Host(`other.example.test`)\"\n      entryPoints: [web]\n      service: other\n  services:\n    other:\n      loadBalancer:\n        servers:\n          - url: \"http://{ip}:80\"\n"
        ),
    )
    .expect("write a second route");
    assert_eq!(traefik.wait_for_status("other.example.test", "/index.html", 200).trim(), "hello-through-traefik");

    // Port 80 exists only in the namespace: the host's loopback has nothing there
    // unless the host runs its own web server, which this test does not assume.
    drop(traefik);
    drop(lxd);
}

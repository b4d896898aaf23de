//! The steps of the sandbox, in order. Each proves its part with a real check.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use terrarium_common::config::secret_names;

use crate::journal::Journal;
use crate::services;
use crate::world::World;

const DOMAIN: &str = "sandbox.test";
const WEB: &str = "web";
const PRIVATE: &str = "private";
const TCP: &str = "tcp";
const TCP_PORT: &str = "9000";

pub fn run(journal: &mut Journal, bin_dir: PathBuf, keep: bool) -> anyhow::Result<()> {
    let mut world = journal.step("Start LXD, ZFS, S3 and ufw in private namespaces", || World::start(bin_dir))?;
    journal.step("Configure the host with terrarium-install --render-only", || configure(&world))?;
    journal.step("Launch three containers with user.proxy labels", || launch(&world))?;
    journal.step("Publish them with terrarium-proxy-sync and real Traefik", || publish(&mut world))?;
    journal.step("Change a label; the watch mode publishes it", || watch(&world))?;
    let before = journal.step("Snapshot with sanoid, export to S3 with terrarium-backup", || back_up(&world))?;
    journal.step("Damage the data, restore it from S3 with terrarium-restore", || restore_from_s3(&world, &before))?;
    journal.step("Damage it again, roll back to the local snapshot", || roll_back(&world, &before))?;
    if keep {
        keep_running(&world);
    }
    Ok(())
}

fn configure(world: &World) -> anyhow::Result<()> {
    let secret = world.scratch.path().join("s3-secret-key");
    world.write_private(&secret, world.s3.secret_key())?;
    let endpoint = world.s3.endpoint();
    let pool_image = world.pool.image().display().to_string();
    let secret = secret.display().to_string();
    world.tool(
        "terrarium-install",
        &[
            "--non-interactive",
            "--render-only",
            "--allow-unsupported-os",
            "--idp",
            "local",
            "--email",
            "ops@sandbox.test",
            "--domain",
            DOMAIN,
            "--storage-mode",
            "file",
            "--storage-source",
            &pool_image,
            "--storage-size",
            "512M",
            "--pool-name",
            world.pool.name(),
            "--enable-s3",
            "--s3-endpoint",
            &endpoint,
            "--s3-bucket",
            world.s3.bucket(),
            "--s3-region",
            world.s3.region(),
            "--s3-access-key",
            world.s3.access_key(),
            "--s3-secret-key-file",
            &secret,
        ],
    )?;
    // In local mode terrarium-idp-sync provisions ZITADEL and stores the route-auth
    // client; ZITADEL cannot run here, so the sandbox stores what it would.
    let paths = terrarium_common::Paths::new(world.root());
    world.write_private(&paths.secret(secret_names::ROUTES_CLIENT_ID), "sandbox-routes")?;
    world.write_private(&paths.secret(secret_names::ROUTES_CLIENT_SECRET), "sandbox-routes-secret")?;
    println!(
        "   stored the route-auth OIDC client terrarium-idp-sync would register in ZITADEL (a stand-in: ZITADEL cannot run here)"
    );
    // Ansible would render Traefik's static file; it cannot converge here.
    let static_file = terrarium_common::Paths::new(world.root()).traefik_static_file();
    std::fs::create_dir_all(static_file.parent().unwrap_or(Path::new("/"))).context("create etc/traefik")?;
    std::fs::create_dir_all(world.root().join("etc/traefik/dynamic")).context("create etc/traefik/dynamic")?;
    std::fs::write(&static_file, services::traefik_static_yaml(&world.root())).context("write traefik.yml")?;
    println!("   wrote {} (what the Ansible traefik role renders)", static_file.display());
    // What the Ansible firewall role does, inside the ufw sandbox.
    for args in [
        &["default", "deny", "incoming"][..],
        &["default", "allow", "outgoing"],
        &["allow", "22/tcp"],
        &["allow", "80/tcp"],
        &["allow", "443/tcp"],
        &["--force", "enable"],
    ] {
        world.ufw.ufw(args);
    }
    println!("   ufw (sandboxed): deny incoming, allow 22, 80 and 443, enabled (what the Ansible firewall role does)");
    Ok(())
}

/// Each container's data lives in `<pool>/containers/<name>`. LXD cannot put its own
/// storage on zfs-fuse, so the dataset holds the app's files and they are pushed into
/// the container; on a real host the dataset is the container's root filesystem.
fn launch(world: &World) -> anyhow::Result<()> {
    world.pool.zfs(&["create", &world.pool.dataset("containers")]);
    for (name, page) in [(WEB, "Hello from the web app"), (PRIVATE, "Hello from the private app")] {
        world.pool.zfs(&["create", &world.pool.dataset(&format!("containers/{name}"))]);
        let www = world.pool.mountpoint(&format!("containers/{name}")).join("www");
        std::fs::create_dir_all(www.join("assets"))?;
        std::fs::write(www.join("index.html"), format!("{page}\n"))?;
        std::fs::write(www.join("assets/data.bin"), pseudo_random_bytes(256 * 1024, name.len() as u64))?;
    }
    let web_label = format!("https://{WEB}.{DOMAIN}");
    let private_label = format!("https://{PRIVATE}.{DOMAIN}@auth:devs");
    let tcp_label = format!("tcp://{TCP_PORT}:{TCP_PORT}");
    for (name, label, start) in [
        (WEB, web_label.as_str(), "httpd -f -p 80 -h /www"),
        (PRIVATE, private_label.as_str(), "httpd -f -p 80 -h /www"),
        (TCP, tcp_label.as_str(), "while true; do echo tcp-service-ok | nc -l -p 9000; done"),
    ] {
        println!("   $ lxc launch busybox {name} -c user.proxy={label}");
        let ip = world.lxd.launch_with(name, &[("user.proxy", label)], start);
        println!("     {name} is up at {ip}");
    }
    for name in [WEB, PRIVATE] {
        push_site(world, name)?;
    }
    Ok(())
}

/// Copy the app's files from its dataset into the container.
fn push_site(world: &World, name: &str) -> anyhow::Result<()> {
    let www = world.pool.mountpoint(&format!("containers/{name}")).join("www");
    world.lxc(&["file", "push", "-r", &www.display().to_string(), &format!("{name}/")])?;
    Ok(())
}

fn publish(world: &mut World) -> anyhow::Result<()> {
    world.restart_traefik();
    world.auth_stand_in = Some(start_auth_stand_in(world)?);
    world.tool("terrarium-proxy-sync", &[])?;
    if world.take_restart_request("traefik") {
        println!("   proxy sync asked systemd to restart Traefik for the new TCP entrypoint; the sandbox does it");
        world.restart_traefik();
    }
    let body = wait_https(world, &format!("{WEB}.{DOMAIN}"), None, 200)?;
    println!("   https://{WEB}.{DOMAIN}/ -> 200 {}", body.trim());
    let (status, _) = https_get(world, &format!("{PRIVATE}.{DOMAIN}"), None)?;
    ensure!(status != 200 && status != 0, "the @auth route answered {status} without a session");
    println!("   https://{PRIVATE}.{DOMAIN}/ without a session -> {status} (refused)");
    let body = wait_https(world, &format!("{PRIVATE}.{DOMAIN}"), Some("_oauth2_proxy=alice:devs"), 200)?;
    println!("   https://{PRIVATE}.{DOMAIN}/ with a session in group devs -> 200 {}", body.trim());
    let (status, _) = https_get(world, &format!("{PRIVATE}.{DOMAIN}"), Some("_oauth2_proxy=bob:ops"))?;
    ensure!(status == 403, "a session outside group devs got {status}, expected 403");
    println!("   ... with a session in group ops only -> 403");
    let reply = tcp_get(world, TCP_PORT)?;
    ensure!(reply.contains("tcp-service-ok"), "the TCP route answered {reply:?}");
    println!("   tcp 127.0.0.1:{TCP_PORT} -> {}", reply.trim());
    let status = world.ufw.status();
    ensure!(status.contains(&format!("{TCP_PORT}/tcp")), "ufw does not allow {TCP_PORT}/tcp:\n{status}");
    ensure!(status.contains("22/tcp"), "the operator's SSH rule is gone:\n{status}");
    println!("   ufw (sandboxed) allows {TCP_PORT}/tcp, marked as Terrarium's; the SSH rule is untouched");
    Ok(())
}

fn watch(world: &World) -> anyhow::Result<()> {
    let log = world.scratch.path().join("watch.log");
    let log_file = std::fs::File::create(&log)?;
    println!("   $ terrarium-proxy-sync --watch   (in the background)");
    let mut watcher = world
        .command("terrarium-proxy-sync")
        .arg("--watch")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()?;
    // Let it subscribe to LXD's event stream first.
    std::thread::sleep(Duration::from_secs(2));
    let host = format!("www.{DOMAIN}");
    let labels = format!("https://{WEB}.{DOMAIN}\nhttps://{host}");
    world.lxc(&["config", "set", WEB, "user.proxy", &labels])?;
    let changed = Instant::now();
    let outcome = wait_https(world, &host, None, 200);
    let latency = changed.elapsed();
    let _ = watcher.kill();
    let _ = watcher.wait();
    let body = outcome.with_context(|| format!("watch log:\n{}", std::fs::read_to_string(&log).unwrap_or_default()))?;
    println!("   https://{host}/ -> 200 {} ({:.2} s after the label changed)", body.trim(), latency.as_secs_f64());
    Ok(())
}

fn back_up(world: &World) -> anyhow::Result<BTreeMap<String, String>> {
    world.tool("terrarium-backup", &["sanoid-config"])?;
    let config_dir = world.root().join("etc/sanoid");
    let defaults = Path::new("/usr/share/sanoid/sanoid.defaults.conf");
    if !config_dir.join("sanoid.defaults.conf").exists() {
        std::fs::copy(defaults, config_dir.join("sanoid.defaults.conf"))
            .with_context(|| format!("copy {}", defaults.display()))?;
    }
    // zfs-fuse lacks `zfs get -t`; the testkit's wrapper emulates it for sanoid. OpenZFS
    // on Ubuntu needs no wrapper.
    let shim = terrarium_testkit::zfs_get_t_shim_dir();
    let cache = world.scratch.path().join("sanoid-cache");
    let run = world.scratch.path().join("sanoid-run");
    std::fs::create_dir_all(&cache)?;
    std::fs::create_dir_all(&run)?;
    println!("   $ sanoid --take-snapshots");
    let output = std::process::Command::new("sanoid")
        .args(["--configdir", &config_dir.display().to_string(), "--cache-dir", &cache.display().to_string()])
        .args(["--run-dir", &run.display().to_string(), "--take-snapshots"])
        .env("PATH", format!("{}:{}", shim.display(), std::env::var("PATH").unwrap_or_default()))
        .output()
        .context("run sanoid")?;
    ensure!(output.status.success(), "sanoid failed: {}", String::from_utf8_lossy(&output.stderr));
    let snapshots =
        world.pool.zfs(&["list", "-H", "-o", "name", "-t", "snapshot", "-r", &world.pool.dataset("containers")]);
    ensure!(
        snapshots.lines().any(|s| s.contains(&format!("containers/{WEB}@autosnap_"))),
        "sanoid took no snapshot of {WEB}:\n{snapshots}"
    );
    println!("     {} snapshots", snapshots.lines().count());
    world.tool("terrarium-backup", &["export"])?;
    world.tool("terrarium-backup", &["list", "--instance", WEB])?;
    checksums(&world.pool.mountpoint(&format!("containers/{WEB}")))
}

fn damage(world: &World) -> anyhow::Result<()> {
    let www = world.pool.mountpoint(&format!("containers/{WEB}")).join("www");
    std::fs::write(www.join("index.html"), "defaced\n")?;
    std::fs::remove_file(www.join("assets/data.bin"))?;
    println!("   damaged {}: index.html overwritten, assets/data.bin deleted", www.display());
    // Deploy the damage too, so the route shows it before the restore.
    push_site(world, WEB)?;
    let body = wait_https(world, &format!("{WEB}.{DOMAIN}"), None, 200)?;
    ensure!(body.contains("defaced"), "the damaged site is not served: {body:?}");
    println!("   https://{WEB}.{DOMAIN}/ -> 200 {}", body.trim());
    Ok(())
}

fn restore_from_s3(world: &World, before: &BTreeMap<String, String>) -> anyhow::Result<()> {
    damage(world)?;
    ensure!(&checksums(&world.pool.mountpoint(&format!("containers/{WEB}")))? != before, "damage changed nothing");
    world.tool("terrarium-restore", &["--instance", WEB, "--source", "s3", "--yes"])?;
    verify_restored(world, before)
}

fn roll_back(world: &World, before: &BTreeMap<String, String>) -> anyhow::Result<()> {
    damage(world)?;
    world.tool("terrarium-restore", &["--instance", WEB, "--source", "local", "--yes"])?;
    verify_restored(world, before)
}

fn verify_restored(world: &World, before: &BTreeMap<String, String>) -> anyhow::Result<()> {
    let after = checksums(&world.pool.mountpoint(&format!("containers/{WEB}")))?;
    ensure!(&after == before, "restored files differ from the backup:\nbefore {before:?}\nafter {after:?}");
    println!("   sha256 of all {} files match the backup", after.len());
    push_site(world, WEB)?;
    let body = wait_https(world, &format!("{WEB}.{DOMAIN}"), None, 200)?;
    ensure!(body.contains("Hello from the web app"), "the web app serves {body:?} after the restore");
    println!("   https://{WEB}.{DOMAIN}/ -> 200 {}", body.trim());
    Ok(())
}

fn keep_running(world: &World) {
    let lxd_env: Vec<String> = world.lxd.env().iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("\nThe sandbox keeps running. Reach each part with:");
    println!("  containers: {} lxc list", lxd_env.join(" "));
    println!(
        "  routes:     nsenter --target {} --net curl -k --resolve {WEB}.{DOMAIN}:443:127.0.0.1 https://{WEB}.{DOMAIN}/",
        world.lxd.pid()
    );
    println!(
        "  tools:      TERRARIUM_ROOT={} {} {}/terrariumctl status",
        world.root().display(),
        lxd_env.join(" "),
        world.bin_dir.display()
    );
    println!(
        "  S3:         {} bucket {} (access key {})",
        world.s3.endpoint(),
        world.s3.bucket(),
        world.s3.access_key()
    );
    println!("  ZFS:        zfs list -r {}", world.pool.name());
    println!("Press Enter to clean everything up.");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

fn start_auth_stand_in(world: &World) -> anyhow::Result<std::process::Child> {
    println!("   oauth2-proxy stand-in on 127.0.0.1:4181 (oauth2-proxy cannot be installed here)");
    let mut command = std::process::Command::new("setpriv");
    command.args([
        "--pdeathsig",
        "KILL",
        "--",
        "nsenter",
        &format!("--target={}", world.lxd.pid()),
        "--net",
        "--",
        "python3",
        "-c",
    ]);
    command.arg(services::auth_stand_in_script()).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    let child = command.spawn().context("start the oauth2-proxy stand-in")?;
    std::thread::sleep(Duration::from_millis(300));
    Ok(child)
}

/// GET https://HOST/ through Traefik inside the namespace: (status, body).
fn https_get(world: &World, host: &str, cookie: Option<&str>) -> anyhow::Result<(u16, String)> {
    let resolve = format!("{host}:443:127.0.0.1");
    let url = format!("https://{host}/");
    let mut args = vec!["-sk", "--max-time", "5", "--resolve", &resolve, "-w", "\n%{http_code}"];
    let cookie_header;
    if let Some(cookie) = cookie {
        cookie_header = format!("Cookie: {cookie}");
        args.extend(["-H", &cookie_header]);
    }
    args.push(&url);
    let output = world.in_netns("curl", &args)?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, code) = stdout.rsplit_once('\n').unwrap_or(("", stdout.as_str()));
    Ok((code.trim().parse().unwrap_or(0), body.to_string()))
}

/// Poll until HOST answers `status` (Traefik reloads its file provider within ~2 s).
fn wait_https(world: &World, host: &str, cookie: Option<&str>, status: u16) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (got, body) = https_get(world, host, cookie)?;
        if got == status {
            return Ok(body);
        }
        if Instant::now() > deadline {
            bail!("https://{host}/ answered {got}, not {status}, for 30 s: {}", body.trim());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn tcp_get(world: &World, port: &str) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let output = world.in_netns("busybox", &["nc", "-w", "2", "127.0.0.1", port])?;
        let reply = String::from_utf8_lossy(&output.stdout).into_owned();
        if !reply.trim().is_empty() || Instant::now() > deadline {
            return Ok(reply);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// sha256 of every file under `dir`, by relative path.
fn checksums(dir: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let mut files = Vec::new();
    collect_files(dir, &mut files)?;
    let mut sums = BTreeMap::new();
    if files.is_empty() {
        return Ok(sums);
    }
    let output = std::process::Command::new("sha256sum").args(&files).output().context("run sha256sum")?;
    ensure!(output.status.success(), "sha256sum failed: {}", String::from_utf8_lossy(&output.stderr));
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        if let Some((sum, path)) = line.split_once("  ") {
            let relative =
                Path::new(path).strip_prefix(dir).map(|p| p.display().to_string()).unwrap_or_else(|_| path.to_string());
            sums.insert(relative, sum.to_string());
        }
    }
    Ok(sums)
}

fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("read {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == ".zfs") {
            continue;
        }
        if entry.file_type()?.is_dir() {
            collect_files(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}

/// Incompressible test data without a random number crate (xorshift).
fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

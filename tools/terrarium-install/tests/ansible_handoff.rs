//! The Ansible hand-off with real `ansible-playbook` and a test playbook
//! (tests/fixtures/ansible/assert-vars.yml, given with TERRARIUM_PLAYBOOK) that asserts
//! the variables it received. The temporary vars and one-time secrets files live in a
//! private directory under TMPDIR, which each test points at an empty directory and
//! checks is empty again after success, failure and SIGINT.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Scene {
    root: tempfile::TempDir,
    work: tempfile::TempDir,
}

impl Scene {
    fn new() -> Self {
        terrarium_testkit::require("ansible-playbook");
        let root = common::ubuntu_root();
        // Root has no usable password: install must hand one over.
        common::write(&root.path().join("etc/shadow"), "root:*:19000:0:99999:7:::\n", 0o640);
        let work = tempfile::Builder::new().prefix("terrarium-ansible-test-").tempdir().unwrap();
        for dir in ["tmp", "out", "ansible-home"] {
            std::fs::create_dir_all(work.path().join(dir)).unwrap();
        }
        Self { root, work }
    }
    fn tmp(&self) -> PathBuf {
        self.work.path().join("tmp")
    }
    fn out(&self) -> PathBuf {
        self.work.path().join("out")
    }
    fn command(&self, binary: &str) -> Command {
        let mut command = Command::new(assert_cmd::cargo::cargo_bin(binary));
        command
            .arg("--root")
            .arg(self.root.path())
            .env("TERRARIUM_PLAYBOOK", common::manifest_dir().join("tests/fixtures/ansible/assert-vars.yml"))
            .env("TMPDIR", self.tmp())
            .env("TERRARIUM_TEST_OUT", self.out())
            .env("TERRARIUM_TEST_EXPECT_MANAGE", "manage.example.com")
            .env("TERRARIUM_LOG_FORMAT", "logfmt")
            // Keep Ansible's own temp and state in the test directory.
            .env("ANSIBLE_HOME", self.work.path().join("ansible-home"))
            .env("ANSIBLE_LOCAL_TEMP", self.work.path().join("ansible-home/tmp"))
            .env("ANSIBLE_REMOTE_TEMP", self.work.path().join("ansible-home/tmp"))
            .env_remove("TERRARIUM_ROOT")
            .stdin(Stdio::null());
        command
    }
    fn install(&self) -> Command {
        let mut command = self.command("terrarium-install");
        command
            .args([
                "--non-interactive",
                "--domain",
                "example.com",
                "--idp",
                "local",
                "--storage-mode",
                "file",
                "--email",
                "ops@example.com",
            ])
            .env("TERRARIUM_ROOT_PASSWORD", "correct horse")
            .env("TERRARIUM_TEST_EXPECT_ROOT_PWD", "correct horse");
        command
    }
    /// Terrarium's private secrets directories under TMPDIR (Ansible keeps its own
    /// short-lived files there too).
    fn secret_dirs(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.tmp())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("terrarium-secrets-")))
            .collect()
    }
    fn assert_no_temp_files_left(&self) {
        let left = self.secret_dirs();
        assert!(left.is_empty(), "temporary secrets left behind: {left:?}");
    }
}

fn output_text(output: &std::process::Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn install_hands_the_variables_and_root_password_to_ansible_and_removes_them() {
    let scene = Scene::new();
    let output = scene.install().output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", output_text(&output));
    let received: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(scene.out().join("received.json")).unwrap()).unwrap();
    assert_eq!(
        received,
        serde_json::json!({"manage": "manage.example.com", "idp": "local", "pool": "terrarium", "contact": "ops@example.com", "traefik_url": "", "config_file": "fixtures/ansible/ansible.cfg", "got_root_password": true, "inherited_root_password_env": false})
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("host converged"));
    let all = output_text(&output);
    assert!(!all.contains("correct horse"), "the root password was printed");
    scene.assert_no_temp_files_left();
    assert!(scene.root.path().join("etc/terrarium/config.yaml").is_file());
}

#[test]
fn the_hosts_overrides_reach_ansible_and_a_config_variable_there_is_refused_before_it_runs() {
    let scene = Scene::new();
    let overrides = scene.root.path().join("etc/terrarium/ansible-overrides.yml");
    common::write(&overrides, "# a mirror\nterrarium_traefik_url: file:///srv/mirror/traefik.tar.gz\n", 0o644);
    let output = scene.install().output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", output_text(&output));
    let received: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(scene.out().join("received.json")).unwrap()).unwrap();
    assert_eq!(received["traefik_url"], "file:///srv/mirror/traefik.tar.gz");
    scene.assert_no_temp_files_left();

    std::fs::remove_file(scene.out().join("received.json")).unwrap();
    common::write(&overrides, "terrarium_manage_domain: evil.example\n", 0o644);
    let output = scene.command("terrarium-reconfigure").env("TERRARIUM_TEST_EXPECT_ROOT_PWD", "").output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", output_text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ansible-overrides.yml: `terrarium_manage_domain` is set by config.yaml"), "{stderr}");
    assert!(stderr.contains("terrarium-set"), "{stderr}");
    assert!(!scene.out().join("received.json").exists(), "Ansible ran with a config variable overridden");
    scene.assert_no_temp_files_left();
}

#[test]
fn a_failing_playbook_fails_install_and_leaves_no_secrets() {
    let scene = Scene::new();
    let output = scene.install().env("TERRARIUM_TEST_FAIL", "1").output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", output_text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("ansible-playbook failed"), "{}", output_text(&output));
    scene.assert_no_temp_files_left();
}

/// Processes whose command line mentions `needle` (the test playbook of this scene).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push(format!("{}: {cmdline}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Start install with a playbook that hangs once it has started, under a path unique to
/// the test (`name`) so its processes can be found; return when Ansible hangs.
fn install_until_ansible_hangs(scene: &Scene, name: &str, stderr: Stdio) -> (std::process::Child, PathBuf) {
    let playbook = scene.work.path().join(name);
    std::fs::copy(common::manifest_dir().join("tests/fixtures/ansible/assert-vars.yml"), &playbook).unwrap();
    let child = scene
        .install()
        .env("TERRARIUM_PLAYBOOK", &playbook)
        .env("TERRARIUM_TEST_HANG", "1")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    wait_for("the playbook to start hanging", Duration::from_secs(120), || scene.out().join("hanging").exists());
    (child, playbook)
}

#[test]
fn sigint_during_ansible_removes_the_secrets_and_stops_the_playbook() {
    let scene = Scene::new();
    let (mut child, playbook) = install_until_ansible_hangs(&scene, "hang-playbook.yml", Stdio::piped());
    // While Ansible runs, the secrets directory exists.
    let during = scene.secret_dirs();
    assert_eq!(during.len(), 1, "{during:?}");
    assert!(during[0].join("vars.json").is_file());
    assert_no_secret_on_disk(&scene.tmp());
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert_eq!(exit.code(), Some(130));
    scene.assert_no_temp_files_left();
    let needle = playbook.display().to_string();
    wait_for("ansible-playbook to stop", Duration::from_secs(30), || processes_mentioning(&needle).is_empty());
}

/// The one-time secrets go through a FIFO: no regular file under `dir` holds them.
fn assert_no_secret_on_disk(dir: &Path) {
    use std::os::unix::fs::FileTypeExt;
    let mut fifos = 0;
    for entry in walk(dir) {
        let meta = std::fs::symlink_metadata(&entry).unwrap();
        if meta.file_type().is_fifo() {
            fifos += 1;
        } else if meta.is_file() {
            let text = String::from_utf8_lossy(&std::fs::read(&entry).unwrap()).into_owned();
            assert!(!text.contains("correct horse"), "{} holds the root password", entry.display());
        }
    }
    assert!(fifos <= 1, "{fifos} FIFOs");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn sigkill_during_ansible_stops_the_playbook_and_the_next_run_cleans_up() {
    let scene = Scene::new();
    let (mut child, playbook) = install_until_ansible_hangs(&scene, "killed-playbook.yml", Stdio::null());
    child.kill().unwrap();
    child.wait().unwrap();
    // No handler runs on SIGKILL: the playbook, its workers and its `sleep` must die
    // anyway, and the root password was never in a file.
    let needle = playbook.display().to_string();
    wait_for("ansible-playbook to die with install", Duration::from_secs(15), || {
        processes_mentioning(&needle).is_empty()
    });
    assert_no_secret_on_disk(&scene.tmp());
    assert_eq!(scene.secret_dirs().len(), 1, "the killed run's directory (an empty FIFO and the vars) is left");
    // The next run removes what the killed one left.
    let output = scene.install().output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", output_text(&output));
    scene.assert_no_temp_files_left();
}

#[test]
fn reconfigure_converges_from_the_persisted_config() {
    let scene = Scene::new();
    let missing = scene.command("terrarium-reconfigure").env("TERRARIUM_TEST_EXPECT_ROOT_PWD", "").output().unwrap();
    assert_eq!(missing.status.code(), Some(2), "{}", output_text(&missing));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("run `terrarium-install` first"));
    let render = scene.install().arg("--render-only").output().unwrap();
    assert_eq!(render.status.code(), Some(0), "{}", output_text(&render));
    assert!(!scene.out().join("received.json").exists(), "--render-only ran Ansible");
    // No one-time secrets on a reconfigure: the root password is not passed again.
    let output = scene.command("terrarium-reconfigure").env("TERRARIUM_TEST_EXPECT_ROOT_PWD", "").output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", output_text(&output));
    assert!(scene.out().join("received.json").is_file());
    scene.assert_no_temp_files_left();
}

#[test]
fn a_missing_playbook_is_named() {
    let scene = Scene::new();
    let output = scene
        .command("terrarium-install")
        .env_remove("TERRARIUM_PLAYBOOK")
        .args([
            "--non-interactive",
            "--domain",
            "example.com",
            "--idp",
            "local",
            "--storage-mode",
            "file",
            "--email",
            "ops@example.com",
            "--root-pwd",
            "x",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no playbook at")
            && stderr.contains(&Path::new("usr/share/terrarium/ansible/site.yml").display().to_string()),
        "{stderr}"
    );
    scene.assert_no_temp_files_left();
}

#[test]
fn while_ansible_runs_the_config_and_traefik_locks_name_their_holder_and_a_second_run_exits_4() {
    let scene = Scene::new();
    let playbook = scene.work.path().join("lock-playbook.yml");
    std::fs::copy(common::manifest_dir().join("tests/fixtures/ansible/assert-vars.yml"), &playbook).unwrap();
    let mut child = scene
        .install()
        .env("TERRARIUM_PLAYBOOK", &playbook)
        .env("TERRARIUM_TEST_HANG", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the playbook to start hanging", Duration::from_secs(120), || scene.out().join("hanging").exists());
    let paths = terrarium_common::Paths::new(scene.root.path());
    let pid = child.id();
    // proxy-sync takes the traefik lock before it touches /etc/traefik: held for the playbook.
    let traefik =
        terrarium_common::locks::TRAEFIK.acquire_within(&paths, "test", Duration::ZERO).unwrap_err().to_string();
    assert!(traefik.contains(&format!("pid {pid} (terrarium-install ansible-playbook)")), "{traefik}");
    let config =
        terrarium_common::locks::CONFIG.acquire_within(&paths, "test", Duration::ZERO).unwrap_err().to_string();
    assert!(config.contains(&format!("pid {pid} (terrarium-install install)")), "{config}");
    // A real second run waits its bound, then exits 4 naming the holder; a dry run is not held up.
    let second = scene.command("terrarium-reconfigure").env("TERRARIUM_TEST_EXPECT_ROOT_PWD", "").output().unwrap();
    assert_eq!(second.status.code(), Some(4), "{}", output_text(&second));
    assert!(
        String::from_utf8_lossy(&second.stderr).contains(&format!("pid {pid} (terrarium-install install)")),
        "{}",
        output_text(&second)
    );
    let dry = scene.command("terrarium-reconfigure").arg("--dry-run").output().unwrap();
    assert_eq!(dry.status.code(), Some(0), "{}", output_text(&dry));
    assert!(Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap().success());
    assert_eq!(child.wait().unwrap().code(), Some(130));
    let needle = playbook.display().to_string();
    wait_for("ansible-playbook to stop", Duration::from_secs(30), || processes_mentioning(&needle).is_empty());
    drop(
        terrarium_common::locks::TRAEFIK
            .acquire_within(&paths, "test", Duration::ZERO)
            .expect("released when install ends"),
    );
}

/// Kill points: install is killed (SIGKILL, the test-only `TERRARIUM_TEST_KILL_AFTER`)
/// after each of its recorded steps, found from a normal run; the same command run
/// again must succeed and leave what one uninterrupted run leaves: the same config and
/// secrets, the playbook run with the same variables, no temporary secrets.
#[test]
fn an_install_killed_after_any_step_converges_on_the_next_run() {
    use std::os::unix::process::ExitStatusExt;
    let reference = Scene::new();
    let record = reference.work.path().join("killpoints.txt");
    let output = reference.install().env(terrarium_common::paths::env::KILLPOINTS, &record).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", output_text(&output));
    let points = terrarium_testkit::killpoints::passed(&record);
    eprintln!("{} kill points: {points:?}", points.len());
    for needed in ["install.config-saved", "install.secrets-dir-made", "install.playbook-finished"] {
        assert!(points.iter().any(|p| p == needed), "{needed} not passed by a normal install: {points:?}");
    }
    let config = |scene: &Scene| std::fs::read_to_string(scene.root.path().join("etc/terrarium/config.yaml")).unwrap();
    let received = |scene: &Scene| std::fs::read_to_string(scene.out().join("received.json")).unwrap();
    for point in &points {
        let scene = Scene::new();
        let killed = scene.install().env(terrarium_common::paths::env::KILL_AFTER, point).output().unwrap();
        assert_eq!(killed.status.signal(), Some(9), "to die after {point}: {}", output_text(&killed));
        let _ = std::fs::remove_file(scene.out().join("received.json"));
        let rerun = scene.install().output().unwrap();
        assert_eq!(rerun.status.code(), Some(0), "rerun after a kill at {point}: {}", output_text(&rerun));
        assert_eq!(config(&scene), config(&reference), "the config after a kill at {point}");
        assert_eq!(received(&scene), received(&reference), "what the playbook got after a kill at {point}");
        scene.assert_no_temp_files_left();
        assert_no_secret_on_disk(&scene.tmp());
    }
}

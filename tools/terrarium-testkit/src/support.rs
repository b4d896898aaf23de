//! Plumbing shared by the pieces: long-running children tied to the test process,
//! polling, free ports, namespace sweeps.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use terrarium_common::process::Cmd;

use crate::programs::require;

type Job = Box<dyn FnOnce() + Send>;

/// Children are forked from this one thread, which lives as long as the process:
/// `PR_SET_PDEATHSIG` fires when the forking *thread* ends, and test threads end early.
static KEEPER: OnceLock<mpsc::Sender<Job>> = OnceLock::new();

fn keeper() -> &'static mpsc::Sender<Job> {
    KEEPER.get_or_init(|| {
        let (sender, receiver) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("testkit-keeper".into())
            .spawn(move || {
                for job in receiver {
                    job();
                }
            })
            .expect("start the testkit keeper thread");
        sender
    })
}

/// A command that runs `program` with `setpriv --pdeathsig KILL`: it dies with the test
/// process, even one killed without unwinding. Spawn it with [`spawn_tied`].
pub(crate) fn tied_command(program: &Path) -> Command {
    let mut command = Command::new(require("setpriv"));
    command.args(["--pdeathsig", "KILL", "--"]).arg(program);
    command
}

/// Spawn `command` from the keeper thread (see [`KEEPER`]).
pub(crate) fn spawn_tied(mut command: Command) -> io::Result<Child> {
    let (reply, answer) = mpsc::channel();
    keeper()
        .send(Box::new(move || {
            let _ = reply.send(command.spawn());
        }))
        .map_err(|_| io::Error::other("testkit keeper thread is gone"))?;
    answer.recv().map_err(|_| io::Error::other("testkit keeper thread did not answer"))?
}

/// Kill and reap a child; a child that already exited is fine.
pub(crate) fn kill_child(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Poll `check` every `step` until it is true or `timeout` passed; true if it became true.
pub(crate) fn wait_until(timeout: Duration, step: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(step);
    }
}

/// A loopback port that was free a moment ago (the kernel picks it).
pub(crate) fn free_loopback_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("bind an ephemeral loopback port")
}

/// Whether something accepts TCP connections on 127.0.0.1:`port` (host network).
pub(crate) fn port_answers(port: u16) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), Duration::from_millis(200)).is_ok()
}

/// Run a command, return stdout; panic with the command line and stderr when it fails
/// (this is test code: a failing harness step is a failing test).
pub(crate) fn run_or_panic(cmd: &Cmd) -> String {
    cmd.run().unwrap_or_else(|err| panic!("testkit: {err}"))
}

/// A fresh temporary directory, removed on drop.
pub(crate) fn temp_dir(what: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("terrarium-testkit-{what}-"))
        .tempdir()
        .unwrap_or_else(|err| panic!("testkit: create a temporary directory: {err}"))
}

/// The network namespace of a process, as the kernel names it (`net:[4026532...]`).
pub(crate) fn netns_of(pid: u32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()
}

/// SIGKILL every process still in network namespace `netns` (daemons a namespaced
/// service left behind: dnsmasq, container monitors). Never the host's namespace.
pub(crate) fn kill_netns_processes(netns: &Path) {
    if netns_of(std::process::id()).as_deref() == Some(netns) {
        return;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    let pids: Vec<String> = entries
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/ns/net")).ok().as_deref() == Some(netns))
        .collect();
    if !pids.is_empty() {
        let _ = Command::new("kill").arg("-KILL").args(&pids).output();
    }
}

/// Read the tail of a log file for an error message.
pub(crate) fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

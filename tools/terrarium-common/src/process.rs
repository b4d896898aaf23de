//! Running external programs (`lxc`, `zfs`, `ufw`, `systemctl`, `ansible-playbook`, ...).
//!
//! Programs are always started from an argument vector, never through a shell, so a
//! label or a dataset name can never become a command. Errors show the command line
//! with secret arguments redacted, the exit status and the tail of stderr.

use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

use wait_timeout::ChildExt;

/// How much of stderr an error keeps.
const STDERR_TAIL_BYTES: usize = 2000;

/// Why a program could not be run or did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("`{program}` was not found on PATH; install it{hint}")]
    NotFound { program: String, hint: String },
    #[error("`{command}` could not be run: {source}")]
    Spawn { command: String, source: io::Error },
    #[error("`{command}` failed ({status}){}", stderr_suffix(.stderr))]
    Failed { command: String, status: String, code: Option<i32>, stderr: String },
    #[error("`{command}` did not finish within {after:?} and was killed")]
    Timeout { command: String, after: Duration },
    #[error("`{command}`: {source}")]
    Io { command: String, source: io::Error },
}

fn stderr_suffix(stderr: &str) -> String {
    let trimmed = stderr.trim();
    if trimmed.is_empty() { String::new() } else { format!(": {}", trimmed.replace('\n', " | ")) }
}

impl ProcessError {
    /// The program's exit code, when it ran and exited with one.
    pub fn code(&self) -> Option<i32> {
        match self {
            Self::Failed { code, .. } => *code,
            _ => None,
        }
    }
    /// The captured stderr tail of a failed program.
    pub fn stderr(&self) -> &str {
        match self {
            Self::Failed { stderr, .. } => stderr,
            _ => "",
        }
    }
}

/// A command line to run. Build it, then call [`Cmd::run`], [`Cmd::output`],
/// [`Cmd::status_inherited`] or [`Cmd::spawn`].
#[derive(Debug, Clone)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    /// Indices into `args` shown as `<redacted>`.
    secret_args: Vec<usize>,
    envs: Vec<(OsString, OsString)>,
    stdin: Option<Vec<u8>>,
    timeout: Option<Duration>,
    install_hint: Option<String>,
}

/// Captured output of a successful run.
#[derive(Debug, Clone)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Self {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            secret_args: Vec::new(),
            envs: Vec::new(),
            stdin: None,
            timeout: None,
            install_hint: None,
        }
    }
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }
    /// An argument that is shown as `<redacted>` in errors and logs. Prefer passing
    /// secrets on stdin or in a 0600 file: argv is visible to every local user.
    pub fn secret_arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.secret_args.push(self.args.len());
        self.args.push(arg.as_ref().to_owned());
        self
    }
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs.push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }
    /// Bytes written to the program's stdin (for secrets and payloads).
    pub fn stdin_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
    /// Added to the "not found" error, such as "with `apt install zfsutils-linux`".
    pub fn install_hint(mut self, hint: impl Into<String>) -> Self {
        self.install_hint = Some(hint.into());
        self
    }

    /// The command line as shown to people, secrets redacted, shell-quoted.
    pub fn display(&self) -> String {
        let mut shown = vec![quote(&self.program.to_string_lossy())];
        for (index, arg) in self.args.iter().enumerate() {
            if self.secret_args.contains(&index) {
                shown.push("<redacted>".into());
            } else {
                shown.push(quote(&arg.to_string_lossy()));
            }
        }
        shown.join(" ")
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        prepare_child(&mut command);
        // A secret variable the caller passes on purpose is set again here.
        for (key, value) in &self.envs {
            command.env(key, value);
        }
        command
    }

    fn spawn_error(&self, source: io::Error) -> ProcessError {
        if source.kind() == io::ErrorKind::NotFound {
            ProcessError::NotFound {
                program: self.program.to_string_lossy().into_owned(),
                hint: self.install_hint.as_deref().map(|h| format!(" {h}")).unwrap_or_default(),
            }
        } else {
            ProcessError::Spawn { command: self.display(), source }
        }
    }

    fn failed(&self, status: ExitStatus, stderr: &[u8]) -> ProcessError {
        ProcessError::Failed {
            command: self.display(),
            status: describe(status),
            code: status.code(),
            stderr: tail(stderr),
        }
    }

    /// Run to completion capturing stdout and stderr; a non-zero exit is an error.
    pub fn output(&self) -> Result<Output, ProcessError> {
        let mut child = self
            .command()
            .stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.spawn_error(e))?;
        let feeder = self.feed_stdin(&mut child);
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        let status = self.wait(&mut child)?;
        if let Some(feeder) = feeder {
            // A program may exit without reading all its input; that is its business.
            let _ = feeder.join();
        }
        let stdout = stdout.join().unwrap_or_default();
        let stderr = stderr.join().unwrap_or_default();
        if !status.success() {
            return Err(self.failed(status, &stderr));
        }
        Ok(Output {
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        })
    }

    /// Run and return stdout; a non-zero exit is an error.
    pub fn run(&self) -> Result<String, ProcessError> {
        self.output().map(|out| out.stdout)
    }

    /// Run with the terminal passed through (for interactive steps and streamed output).
    pub fn status_inherited(&self) -> Result<(), ProcessError> {
        let mut child = self.command().spawn().map_err(|e| self.spawn_error(e))?;
        let status = self.wait(&mut child)?;
        if status.success() { Ok(()) } else { Err(self.failed(status, b"")) }
    }

    /// Start the program for streaming: choose what its stdin and stdout are (a pipe to
    /// read from, another process's pipe, a file). stderr is collected in the
    /// background for the error message. Call [`Running::finish`] to check the exit.
    pub fn spawn(&self, stdin: Stdio, stdout: Stdio) -> Result<Running, ProcessError> {
        let mut child = self
            .command()
            .stdin(stdin)
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.spawn_error(e))?;
        let stderr = drain(child.stderr.take());
        Ok(Running { cmd: self.clone(), child, stderr: Some(stderr) })
    }

    fn feed_stdin(&self, child: &mut Child) -> Option<JoinHandle<()>> {
        let bytes = self.stdin.clone()?;
        let mut pipe = child.stdin.take()?;
        Some(std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        }))
    }

    fn wait(&self, child: &mut Child) -> Result<ExitStatus, ProcessError> {
        let io_err = |source| ProcessError::Io { command: self.display(), source };
        match self.timeout {
            None => child.wait().map_err(io_err),
            Some(after) => match child.wait_timeout(after).map_err(io_err)? {
                Some(status) => Ok(status),
                None => {
                    let _ = child.kill();
                    let _ = child.wait();
                    Err(ProcessError::Timeout { command: self.display(), after })
                }
            },
        }
    }
}

/// A program started by [`Cmd::spawn`].
#[derive(Debug)]
pub struct Running {
    cmd: Cmd,
    child: Child,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

impl Running {
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.child.stdin.take()
    }
    pub fn stdin(&self) -> Option<&ChildStdin> {
        self.child.stdin.as_ref()
    }
    pub fn id(&self) -> u32 {
        self.child.id()
    }
    /// Wait for the exit; a non-zero exit is an error with the stderr tail.
    pub fn finish(mut self) -> Result<(), ProcessError> {
        drop(self.child.stdin.take());
        let status = self.cmd.wait(&mut self.child)?;
        let stderr = self.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default();
        if status.success() { Ok(()) } else { Err(self.cmd.failed(status, &stderr)) }
    }
    /// Stop the program (on an error elsewhere in a pipeline) and reap it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buffer = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buffer);
        }
        buffer
    })
}

fn tail(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(STDERR_TAIL_BYTES);
    String::from_utf8_lossy(&bytes[start..]).trim().to_string()
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}

/// Quote an argument for display the way a shell would need it.
fn quote(arg: &str) -> String {
    let plain = !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b));
    if plain { arg.to_string() } else { format!("'{}'", arg.replace('\'', r"'\''")) }
}

/// What every program a tool starts gets, whether through [`Cmd`] or a hand-built
/// [`Command`] (Ansible): no secret environment variable of ours
/// ([`crate::paths::env::SECRETS`]; set one again after this call to pass it on
/// purpose), and death with the tool. A SIGKILLed tool cannot stop its children, and
/// an orphaned `ansible-playbook` would go on changing the host after the config lock
/// is released, so the kernel sends them SIGKILL when the tool dies
/// (`PR_SET_PDEATHSIG`). The signal follows the thread that started the child: start
/// long-running programs from a thread that outlives them (every tool starts them
/// from its main thread).
pub fn prepare_child(command: &mut Command) {
    remove_secret_env(command);
    die_with_parent(command);
}

/// Only the environment part of [`prepare_child`], for the rare child that must
/// outlive the tool for a moment (a watchdog that cleans up after it).
pub fn remove_secret_env(command: &mut Command) {
    for name in crate::paths::env::SECRETS {
        command.env_remove(name);
    }
}

#[allow(unsafe_code)] // `pre_exec` is unsafe: the closure runs between fork and exec.
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = rustix::process::getpid();
    // SAFETY: the closure makes two system calls and allocates nothing, which is what
    // may be done in a forked child of a multi-threaded process.
    unsafe {
        command.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            // The parent may have died before the line above: then nobody sends it.
            if rustix::process::getppid() != Some(parent) {
                return Err(rustix::io::Errno::SRCH.into());
            }
            Ok(())
        });
    }
}

/// Whether `program` can be found on PATH (for capability checks and clear errors).
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            let candidate = dir.join(program);
            std::fs::metadata(&candidate).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_captures_stdout() {
        assert_eq!(Cmd::new("echo").arg("hi").run().unwrap(), "hi\n");
    }

    #[test]
    fn failures_show_the_redacted_command_status_and_stderr() {
        let err = Cmd::new("sh").arg("-c").arg("echo boom >&2; exit 3").secret_arg("hunter2").run().unwrap_err();
        let shown = err.to_string();
        assert_eq!(err.code(), Some(3));
        assert!(shown.contains("exit status 3") && shown.contains("boom"), "{shown}");
        assert!(shown.contains("<redacted>") && !shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn missing_programs_say_so() {
        let err = Cmd::new("terrarium-no-such-program").install_hint("with `apt install x`").run().unwrap_err();
        assert!(matches!(err, ProcessError::NotFound { .. }));
        assert!(err.to_string().contains("apt install x"));
    }

    #[test]
    fn timeouts_kill_the_program() {
        let err = Cmd::new("sleep").arg("5").timeout(Duration::from_millis(100)).run().unwrap_err();
        assert!(matches!(err, ProcessError::Timeout { .. }), "{err}");
    }

    #[test]
    fn stdin_bytes_reach_the_program() {
        assert_eq!(Cmd::new("cat").stdin_bytes("secret").run().unwrap(), "secret");
    }

    #[test]
    fn spawn_streams_between_programs() {
        let mut producer = Cmd::new("printf").arg("a\\nb\\n").spawn(Stdio::null(), Stdio::piped()).unwrap();
        let pipe = producer.take_stdout().unwrap();
        let mut counter = Cmd::new("wc").arg("-l").spawn(Stdio::from(pipe), Stdio::piped()).unwrap();
        let mut out = String::new();
        counter.take_stdout().unwrap().read_to_string(&mut out).unwrap();
        producer.finish().unwrap();
        counter.finish().unwrap();
        assert_eq!(out.trim(), "2");
    }

    /// Run this test binary again as `test`, with `envs`; its stdout.
    fn rerun(test: &str, envs: &[(&str, &str)]) -> String {
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", test, "--nocapture", "--test-threads=1"])
            .envs(envs.iter().copied())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn secret_variables_are_not_inherited_unless_passed_on_purpose() {
        let password = crate::paths::env::ROOT_PASSWORD;
        if std::env::var_os("TERRARIUM_TEST_ENV_CHILD").is_some() {
            print!("inherited:{}", Cmd::new("env").run().unwrap());
            print!("passed:{}", Cmd::new("env").env(password, "on-purpose").run().unwrap());
            let mut hand_built = Command::new("env");
            prepare_child(&mut hand_built);
            print!("hand-built:{}", String::from_utf8_lossy(&hand_built.output().unwrap().stdout));
            return;
        }
        let shown = rerun(
            "process::tests::secret_variables_are_not_inherited_unless_passed_on_purpose",
            &[
                ("TERRARIUM_TEST_ENV_CHILD", "1"),
                (password, "hunter2"),
                (crate::paths::env::S3_SECRET_KEY, "s3cret"),
                ("TERRARIUM_LOG", "debug"),
            ],
        );
        assert!(shown.contains("inherited:") && shown.contains("hand-built:"), "{shown}");
        assert!(!shown.contains("hunter2") && !shown.contains("s3cret"), "a secret variable was inherited: {shown}");
        assert!(shown.contains(&format!("{password}=on-purpose")), "{shown}");
        assert!(shown.contains("TERRARIUM_LOG=debug"), "other variables are inherited: {shown}");
    }

    #[test]
    fn children_die_with_the_process_that_started_them() {
        // `sh` starts `sleep` through Cmd (this test binary, run again as the middle
        // process), then the middle process is SIGKILLed: its sleep must not survive.
        if std::env::var_os("TERRARIUM_TEST_PDEATHSIG_MIDDLE").is_some() {
            let running = Cmd::new("sleep").arg("30").spawn(Stdio::null(), Stdio::null()).unwrap();
            println!("{}", running.id());
            std::thread::sleep(Duration::from_secs(30));
            return;
        }
        let mut middle = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "process::tests::children_die_with_the_process_that_started_them",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("TERRARIUM_TEST_PDEATHSIG_MIDDLE", "1")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut reader = io::BufReader::new(middle.stdout.take().unwrap());
        let sleep_pid = loop {
            let mut line = String::new();
            assert!(io::BufRead::read_line(&mut reader, &mut line).unwrap() > 0, "the middle process ended early");
            // libtest may print `test NAME ... ` on the same line first.
            if let Some(Ok(pid)) = line.split_whitespace().last().map(str::parse::<i32>) {
                break pid;
            }
        };
        let alive =
            |pid: i32| std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| !stat.contains(") Z "));
        assert!(alive(sleep_pid));
        middle.kill().unwrap();
        middle.wait().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while alive(sleep_pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive(sleep_pid), "sleep {sleep_pid} outlived the process that started it");
    }

    #[test]
    fn display_quotes_odd_arguments() {
        assert_eq!(Cmd::new("zfs").arg("list").arg("a b").arg("it's").display(), r"zfs list 'a b' 'it'\''s'");
    }
}

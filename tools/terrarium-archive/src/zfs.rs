//! A typed wrapper over the `zfs` command line (through [`terrarium_common::process::Cmd`]).
//!
//! Two implementations must work: OpenZFS 2.2 (production, Ubuntu 24.04) and zfs-fuse
//! (tests). zfs-fuse lacks `list -p`, `get -t`, `send -n/-P/-c/-w` and bookmarks, and its
//! `zfs list` abbreviates GUIDs (`15.5E`) without `-p`. So capabilities are detected from
//! `zfs`'s own usage text, never assumed, and numbers are read in parsable form: with
//! `list -Hp` where it exists, else with `get -Hp` (which both have).
//!
//! Every command line ends its options with `--` before the names it takes, so no name
//! (from the config, a flag or a label) can ever be read as an option. (zfs-fuse's
//! `zfs set` alone parses no options and refuses `--`; its callers pass validated names.)
//!
//! Streams are started with [`Zfs::send`] / [`Zfs::receive`], which return the running
//! process with a pipe to read from or write to; call `finish()` to check its exit.

use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use terrarium_common::process::{Cmd, ProcessError, Running};

/// The hold tag that keeps the base of the next incremental from being destroyed.
pub const HOLD_TAG: &str = "terrarium-backup";
/// Datasets of containers live at `<pool>/containers/<instance>`.
pub const CONTAINERS: &str = "containers";

const INSTALL_HINT: &str = "with `apt install zfsutils-linux`";
/// Metadata commands are quick; a hung one should not hang a timer unit forever.
const QUICK: Duration = Duration::from_secs(300);
/// The pipe into `zfs receive` (see [`Zfs::receive`]).
const RECEIVE_PIPE_BYTES: usize = 1024 * 1024;

/// What this `zfs` supports, from its usage text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// `zfs list -p` (exact numbers); else numbers come from `zfs get -Hp`.
    pub list_parsable: bool,
    /// `zfs get -t TYPE`.
    pub get_type: bool,
    /// `zfs hold` / `zfs release`.
    pub holds: bool,
    /// `zfs send -nP` (a size estimate before sending).
    pub send_estimate: bool,
    /// `zfs send -c` (compressed blocks as stored).
    pub send_compressed: bool,
    /// `zfs send -L` (blocks over 128 KiB as they are).
    pub send_large_blocks: bool,
    /// `zfs send -e` (blocks embedded in their block pointers as they are).
    pub send_embedded: bool,
    /// `zfs bookmark`.
    pub bookmarks: bool,
}

impl Capabilities {
    /// The flags every `zfs send` gets: `-L -e -c` where all three exist (what `-w` means
    /// for an unencrypted dataset), so blocks travel as the pool stores them: compressed
    /// (`-c`), a block that compresses to a few bytes as the block pointer that holds it
    /// (`-e`; without it such a block is sent whole, decompressed), large blocks whole
    /// (`-L`; without it `-c` still decompresses on a pool with the large_blocks
    /// feature, zfs-send(8)). The manifest records them: receiving such a stream needs a
    /// pool with the same features (zstd compression, embedded_data, large_blocks).
    pub fn send_flags(&self) -> &'static [&'static str] {
        if self.send_compressed && self.send_embedded && self.send_large_blocks { &["-L", "-e", "-c"] } else { &[] }
    }

    /// Read capabilities from the usage text `zfs` prints when run without arguments.
    pub fn from_usage(usage: &str) -> Self {
        let line = |command: &str| {
            usage.lines().map(str::trim_start).find(|l| l.starts_with(&format!("{command} "))).unwrap_or("")
        };
        let flags = |command: &str| -> String {
            // The single-letter flag groups of the command's first usage line: `[-rHp]`.
            line(command)
                .split_whitespace()
                .filter_map(|t| t.strip_prefix("[-").and_then(|t| t.strip_suffix(']')))
                .filter(|t| t.chars().all(|c| c.is_ascii_alphabetic()))
                .collect()
        };
        let send = flags("send");
        Self {
            list_parsable: flags("list").contains('p'),
            get_type: line("get").contains("[-t type"),
            holds: !line("hold").is_empty() && !line("release").is_empty(),
            send_estimate: send.contains('n') && send.contains('P'),
            send_compressed: send.contains('c'),
            send_large_blocks: send.contains('L'),
            send_embedded: send.contains('e'),
            bookmarks: !line("bookmark").is_empty(),
        }
    }
}

/// A snapshot with its identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Snapshot {
    /// The dataset, `tank/containers/web`.
    pub dataset: String,
    /// The short name after the `@`.
    pub name: String,
    pub guid: u64,
    pub createtxg: u64,
}

impl Snapshot {
    /// `dataset@name`.
    pub fn full_name(&self) -> String {
        format!("{}@{}", self.dataset, self.name)
    }
}

/// One container's dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerDataset {
    /// The instance name (the last path component).
    pub instance: String,
    /// `<pool>/containers/<instance>`.
    pub dataset: String,
}

/// Why a ZFS operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ZfsError {
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("dataset {0} does not exist")]
    NoDataset(String),
    #[error(
        "pool {0} does not exist or is not imported: `zpool import {0}` (or fix storage.pool in /etc/terrarium/config.yaml)"
    )]
    NoPool(String),
    #[error("unexpected `zfs` output for {what}: `{line}`")]
    Parse { what: String, line: String },
}

/// The `zfs` program and its detected capabilities.
#[derive(Debug)]
pub struct Zfs {
    program: String,
    caps: OnceLock<Capabilities>,
}

impl Default for Zfs {
    fn default() -> Self {
        Self::new()
    }
}

impl Zfs {
    /// `zfs` from PATH.
    pub fn new() -> Self {
        Self::with_program("zfs")
    }

    /// A specific `zfs` binary (or wrapper).
    pub fn with_program(program: impl Into<String>) -> Self {
        Self { program: program.into(), caps: OnceLock::new() }
    }

    /// A `zfs` command line with the install hint, for callers that need their own.
    pub fn cmd(&self) -> Cmd {
        Cmd::new(&self.program).install_hint(INSTALL_HINT)
    }

    fn quick(&self) -> Cmd {
        self.cmd().timeout(QUICK)
    }

    /// Detected once per process from the usage text `zfs` prints when run without a
    /// command (both implementations list every command's flags there).
    pub fn capabilities(&self) -> Result<Capabilities, ZfsError> {
        if let Some(caps) = self.caps.get() {
            return Ok(*caps);
        }
        // Read directly rather than through Cmd: the usage is longer than the stderr tail
        // Cmd keeps for error messages, and a non-zero exit is expected here.
        let mut usage = std::process::Command::new(&self.program);
        terrarium_common::process::prepare_child(&mut usage);
        let out = usage.stdin(Stdio::null()).output().map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ProcessError::NotFound { program: self.program.clone(), hint: format!(" {INSTALL_HINT}") }
            } else {
                ProcessError::Spawn { command: self.program.clone(), source }
            }
        })?;
        let usage = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let caps = Capabilities::from_usage(&usage);
        let _ = self.caps.set(caps);
        Ok(caps)
    }

    /// Whether a dataset or snapshot exists.
    pub fn exists(&self, name: &str) -> Result<bool, ZfsError> {
        match self.quick().args(["list", "-H", "-o", "name", "--"]).arg(name).output() {
            Ok(_) => Ok(true),
            Err(err) if err.stderr().contains("does not exist") => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    /// One property in parsable form (`zfs get -Hp -o value PROP NAME`).
    pub fn get(&self, name: &str, property: &str) -> Result<String, ZfsError> {
        let out = self.quick().args(["get", "-Hp", "-o", "value", "--", property, name]).run()?;
        Ok(out.trim_end_matches('\n').to_string())
    }

    /// The datasets `<pool>/containers/<name>`, sorted by name; empty when
    /// `<pool>/containers` does not exist yet (LXD creates it with its first instance).
    /// A missing pool is an error: a backup of nothing must not look like a success.
    pub fn container_datasets(&self, pool: &str) -> Result<Vec<ContainerDataset>, ZfsError> {
        let parent = format!("{pool}/{CONTAINERS}");
        let out = match self
            .quick()
            .args(["list", "-H", "-o", "name", "-t", "filesystem", "-r", "-d", "1", "--"])
            .arg(&parent)
            .output()
        {
            Ok(out) => out.stdout,
            Err(err) if err.stderr().contains("does not exist") => {
                return if self.exists(pool)? { Ok(Vec::new()) } else { Err(ZfsError::NoPool(pool.to_string())) };
            }
            Err(err) => return Err(err.into()),
        };
        let mut found: Vec<ContainerDataset> = out
            .lines()
            .filter_map(|name| name.strip_prefix(&format!("{parent}/")).map(|instance| (instance, name)))
            .filter(|(instance, _)| !instance.is_empty() && !instance.contains('/'))
            .map(|(instance, name)| ContainerDataset { instance: instance.to_string(), dataset: name.to_string() })
            .collect();
        found.sort_by(|a, b| a.instance.cmp(&b.instance));
        Ok(found)
    }

    /// The snapshots of `dataset` (not of its children), oldest first (by createtxg).
    pub fn snapshots(&self, dataset: &str) -> Result<Vec<Snapshot>, ZfsError> {
        if !self.exists(dataset)? {
            return Err(ZfsError::NoDataset(dataset.to_string()));
        }
        let mut snapshots = if self.capabilities()?.list_parsable {
            let out = self
                .quick()
                .args(["list", "-Hp", "-o", "name,guid,createtxg", "-t", "snapshot", "-d", "1", "--"])
                .arg(dataset)
                .run()?;
            parse_snapshot_list(&out, dataset)?
        } else {
            let out = self
                .quick()
                .args(["get", "-Hp", "-r", "-d", "1", "-o", "name,property,value", "--", "guid,createtxg"])
                .arg(dataset)
                .run()?;
            parse_snapshot_get(&out, dataset)?
        };
        snapshots.sort_by_key(|s| s.createtxg);
        Ok(snapshots)
    }

    /// When `dataset` was created and its newest snapshot (by creation time), in unix
    /// seconds, from one `zfs get`: what `status` judges the time machine by.
    pub fn creation_times(&self, dataset: &str) -> Result<CreationTimes, ZfsError> {
        // `zfs get` rather than `list`: both implementations take these flags.
        let out = self
            .quick()
            .args(["get", "-Hp", "-r", "-d", "1", "-o", "name,value", "--", "creation"])
            .arg(dataset)
            .run()?;
        parse_creation_times(&out, dataset)
    }

    /// Take a snapshot `dataset@name`.
    pub fn snapshot(&self, full_name: &str) -> Result<(), ZfsError> {
        self.quick().args(["snapshot", "--", full_name]).run()?;
        Ok(())
    }

    /// A size estimate of the stream in bytes: `send -nP` where supported, else the
    /// snapshot's `referenced` (an upper-bound-ish figure, used only to size upload parts).
    pub fn send_size_estimate(&self, snapshot: &str, base: Option<&str>, flags: &[&str]) -> Result<u64, ZfsError> {
        if self.capabilities()?.send_estimate {
            let mut cmd = self.quick().args(["send", "-nP"]).args(flags);
            if let Some(base) = base {
                cmd = cmd.args(["-I", base]);
            }
            let out = cmd.args(["--", snapshot]).output()?;
            let text = format!("{}\n{}", out.stdout, out.stderr);
            if let Some(size) = text.lines().find_map(|l| l.strip_prefix("size\t").and_then(|n| n.trim().parse().ok()))
            {
                return Ok(size);
            }
        }
        let referenced = self.get(snapshot, "referenced")?;
        referenced.parse().map_err(|_| ZfsError::Parse { what: format!("referenced of {snapshot}"), line: referenced })
    }

    /// The command line of a send: full, or incremental with every snapshot between
    /// (`-I base`), with `flags` ([`Capabilities::send_flags`]).
    pub fn send_cmd(&self, snapshot: &str, base: Option<&str>, flags: &[&str]) -> Cmd {
        let mut cmd = self.cmd().arg("send").args(flags);
        if let Some(base) = base {
            cmd = cmd.args(["-I", base]);
        }
        cmd.args(["--", snapshot])
    }

    /// Start `zfs send`; read the stream from `take_stdout()`.
    pub fn send(&self, snapshot: &str, base: Option<&str>, flags: &[&str]) -> Result<Running, ZfsError> {
        Ok(self.send_cmd(snapshot, base, flags).spawn(Stdio::null(), Stdio::piped())?)
    }

    /// Start `zfs receive [-F] target`; write the stream to `take_stdin()`.
    pub fn receive(&self, target: &str, force: bool) -> Result<Running, ZfsError> {
        self.receive_as(target, if force { &["-F"] } else { &[] })
    }

    /// `zfs receive -F -u target`: received, not mounted (a restore drill's scratch
    /// dataset, which nothing reads as files; the drill's unit sees / read-only).
    pub fn receive_unmounted(&self, target: &str) -> Result<Running, ZfsError> {
        self.receive_as(target, &["-F", "-u"])
    }

    fn receive_as(&self, target: &str, flags: &[&str]) -> Result<Running, ZfsError> {
        let cmd = self.cmd().arg("receive").args(flags);
        let running = cmd.args(["--", target]).spawn(Stdio::piped(), Stdio::null())?;
        if let Some(stdin) = running.stdin() {
            // Linux's default 64 KiB pipe makes the writer and `zfs receive` take turns
            // far more often; 1 MiB measured faster. Best effort: the default still works.
            let _ = rustix::pipe::fcntl_setpipe_size(stdin, RECEIVE_PIPE_BYTES);
        }
        Ok(running)
    }

    /// `zfs hold TAG snapshot`; an existing hold with the same tag is fine.
    pub fn hold(&self, tag: &str, snapshot: &str) -> Result<(), ZfsError> {
        match self.quick().args(["hold", "--", tag, snapshot]).output() {
            Ok(_) => Ok(()),
            Err(err) if err.stderr().contains("tag already exists") => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    /// `zfs release TAG snapshot`; a missing hold or snapshot is fine (already released).
    pub fn release(&self, tag: &str, snapshot: &str) -> Result<(), ZfsError> {
        match self.quick().args(["release", "--", tag, snapshot]).output() {
            Ok(_) => Ok(()),
            Err(err) if err.stderr().contains("no such tag") || err.stderr().contains("does not exist") => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    /// The short names of the snapshots of `dataset` that carry a hold tagged `tag`.
    /// `userrefs` (one `get` for all snapshots) finds the held ones; `zfs holds` then
    /// tells whose holds they are. Where `zfs holds` fails, every held snapshot counts
    /// (releasing a tag a snapshot does not carry is harmless).
    pub fn held_snapshots(&self, dataset: &str, tag: &str) -> Result<Vec<String>, ZfsError> {
        let out =
            self.quick().args(["get", "-Hp", "-r", "-d", "1", "-o", "name,value", "--", "userrefs", dataset]).run()?;
        let held = parse_held(&out, dataset);
        if held.is_empty() {
            return Ok(held);
        }
        let full: Vec<String> = held.iter().map(|name| format!("{dataset}@{name}")).collect();
        match self.quick().args(["holds", "-H", "--"]).args(&full).output() {
            Ok(out) => Ok(parse_holds(&out.stdout, dataset, tag)),
            Err(err) => {
                log::debug!("`zfs holds` failed ({err}); counting every held snapshot of {dataset}");
                Ok(held)
            }
        }
    }

    /// `zfs destroy [-r] name`, retried briefly while the dataset is busy (zfs-fuse
    /// reports a just-received or just-cloned dataset busy for a moment).
    pub fn destroy(&self, name: &str, recursive: bool) -> Result<(), ZfsError> {
        let mut cmd = self.quick().arg("destroy");
        if recursive {
            cmd = cmd.arg("-r");
        }
        let cmd = cmd.args(["--", name]);
        let mut attempt = 0;
        loop {
            match cmd.output() {
                Ok(_) => return Ok(()),
                Err(err) if err.stderr().contains("busy") && attempt < 25 => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// `zfs rename from to`.
    pub fn rename(&self, from: &str, to: &str) -> Result<(), ZfsError> {
        self.quick().args(["rename", "--", from, to]).run()?;
        Ok(())
    }

    /// `zfs rollback [-r] snapshot` (`-r` destroys later snapshots).
    pub fn rollback(&self, snapshot: &str, destroy_later: bool) -> Result<(), ZfsError> {
        let mut cmd = self.quick().arg("rollback");
        if destroy_later {
            cmd = cmd.arg("-r");
        }
        cmd.args(["--", snapshot]).run()?;
        Ok(())
    }

    /// `zfs send snapshot | zfs receive target`: a new dataset holding that snapshot,
    /// independent of the source. A clone would be quicker, but it keeps its origin
    /// snapshot (and so the source dataset) from being destroyed or rolled back past: an
    /// `lxc delete`, a sanoid prune or a later restore of the source would fail.
    pub fn copy_snapshot(&self, snapshot: &str, target: &str) -> Result<(), ZfsError> {
        let flags = self.capabilities().map(|c| c.send_flags()).unwrap_or(&[]);
        let mut send = self.send(snapshot, None, flags)?;
        let stream = send.take_stdout().map_or_else(Stdio::null, Stdio::from);
        let receive = match self.cmd().args(["receive", "--", target]).spawn(stream, Stdio::null()) {
            Ok(receive) => receive,
            Err(err) => {
                send.kill();
                return Err(err.into());
            }
        };
        // The receive's error says more than the send's broken pipe.
        let received = receive.finish();
        let sent = send.finish();
        received?;
        sent?;
        Ok(())
    }
}

/// The short names of the snapshots of `dataset` with `userrefs` above 0, from
/// `zfs get -Hp -r -d 1 -o name,value userrefs DATASET` output.
pub fn parse_held(out: &str, dataset: &str) -> Vec<String> {
    out.lines()
        .filter_map(|line| line.split_once('\t'))
        .filter(|(_, refs)| refs.trim().parse::<u64>().is_ok_and(|n| n > 0))
        .filter_map(|(name, _)| name.strip_prefix(dataset)?.strip_prefix('@').map(str::to_string))
        .collect()
}

/// The short names of the snapshots of `dataset` holding `tag`, from `zfs holds -H`
/// output (`NAME<TAB>TAG<TAB>TIMESTAMP`; zfs-fuse pads with spaces, so any whitespace).
pub fn parse_holds(out: &str, dataset: &str, tag: &str) -> Vec<String> {
    let mut names: Vec<String> = out
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (name, held_by) = (fields.next()?, fields.next()?);
            (held_by == tag).then(|| name.strip_prefix(dataset)?.strip_prefix('@').map(str::to_string))?
        })
        .collect();
    names.dedup();
    names
}

fn parse_u64(what: &str, line: &str, value: &str) -> Result<u64, ZfsError> {
    value.parse().map_err(|_| ZfsError::Parse { what: what.to_string(), line: line.to_string() })
}

/// Parse `zfs list -Hp -o name,guid,createtxg -t snapshot` output.
pub fn parse_snapshot_list(out: &str, dataset: &str) -> Result<Vec<Snapshot>, ZfsError> {
    let mut snapshots = Vec::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [name, guid, createtxg] = fields[..] else {
            return Err(ZfsError::Parse { what: "snapshot list".into(), line: line.into() });
        };
        let Some(short) = name.strip_prefix(&format!("{dataset}@")) else {
            continue;
        };
        snapshots.push(Snapshot {
            dataset: dataset.to_string(),
            name: short.to_string(),
            guid: parse_u64("guid", line, guid)?,
            createtxg: parse_u64("createtxg", line, createtxg)?,
        });
    }
    Ok(snapshots)
}

/// A dataset's creation time and its newest snapshot's (unix seconds).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreationTimes {
    pub dataset: Option<i64>,
    /// The newest of the dataset's own snapshots (not its children's), and when.
    pub newest_snapshot: Option<(String, i64)>,
}

/// Parse `zfs get -Hp -r -d 1 -o name,value creation DATASET` output.
pub fn parse_creation_times(out: &str, dataset: &str) -> Result<CreationTimes, ZfsError> {
    let mut times = CreationTimes::default();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let Some((name, value)) = line.split_once('\t') else {
            return Err(ZfsError::Parse { what: "snapshot creation times".into(), line: line.into() });
        };
        let snapshot = name.strip_prefix(&format!("{dataset}@"));
        if snapshot.is_none() && name != dataset {
            continue;
        }
        let created = value
            .trim()
            .parse::<i64>()
            .map_err(|_| ZfsError::Parse { what: "snapshot creation time".into(), line: line.into() })?;
        match snapshot {
            None => times.dataset = Some(created),
            Some(short) => {
                if times.newest_snapshot.as_ref().is_none_or(|(_, at)| created >= *at) {
                    times.newest_snapshot = Some((short.to_string(), created));
                }
            }
        }
    }
    Ok(times)
}

/// Parse `zfs get -Hp -r -d 1 -o name,property,value guid,createtxg DATASET` output,
/// keeping the snapshots of `dataset` itself.
pub fn parse_snapshot_get(out: &str, dataset: &str) -> Result<Vec<Snapshot>, ZfsError> {
    let mut by_name: std::collections::BTreeMap<String, (Option<u64>, Option<u64>)> = Default::default();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [name, property, value] = fields[..] else {
            return Err(ZfsError::Parse { what: "snapshot properties".into(), line: line.into() });
        };
        let Some(short) = name.strip_prefix(&format!("{dataset}@")) else {
            continue;
        };
        let entry = by_name.entry(short.to_string()).or_default();
        match property {
            "guid" => entry.0 = Some(parse_u64("guid", line, value)?),
            "createtxg" => entry.1 = Some(parse_u64("createtxg", line, value)?),
            _ => {}
        }
    }
    by_name
        .into_iter()
        .map(|(name, (guid, createtxg))| match (guid, createtxg) {
            (Some(guid), Some(createtxg)) => Ok(Snapshot { dataset: dataset.to_string(), name, guid, createtxg }),
            _ => Err(ZfsError::Parse {
                what: "snapshot properties".into(),
                line: format!("{dataset}@{name}: guid or createtxg missing"),
            }),
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ZFS_FUSE_USAGE: &str = "usage: zfs command args ...\n\tlist [-rH][-d max] [-o property[,...]] [-t type[,...]] [-s property] ...\n\tget [-rHp] [-d max] [-o \"all\" | field[,...]] [-s source[,...]]\n\tsend [-RDp] [-[iI] snapshot] <snapshot>\n\thold [-r] <tag> <snapshot> ...\n\trelease [-r] <tag> <snapshot> ...\n";
    const OPENZFS_USAGE: &str = "usage: zfs command args ...\n\tlist [-Hp] [-r|-d max] [-o property[,...]] [-s property]...\n\t    [-S property]... [-t type[,...]] [filesystem|volume|snapshot] ...\n\tget [-rHp] [-d max] [-o \"all\" | field[,...]]\n\t    [-t type[,...]] [-s source[,...]]\n\tsend [-DLPbcehnpsVvw] [-i|-I snapshot]\n\t     [-R [-X dataset[,dataset]...]]     <snapshot>\n\tbookmark <snapshot|bookmark> <newbookmark>\n\thold [-r] <tag> <snapshot> ...\n\trelease [-r] <tag> <snapshot> ...\n";

    #[test]
    fn zfs_fuse_capabilities_are_detected() {
        let caps = Capabilities::from_usage(ZFS_FUSE_USAGE);
        assert_eq!(
            caps,
            Capabilities {
                list_parsable: false,
                get_type: false,
                holds: true,
                send_estimate: false,
                send_compressed: false,
                send_large_blocks: false,
                send_embedded: false,
                bookmarks: false
            }
        );
    }

    #[test]
    fn openzfs_capabilities_are_detected() {
        let caps = Capabilities::from_usage(OPENZFS_USAGE);
        assert!(
            caps.list_parsable && caps.holds && caps.send_estimate && caps.send_compressed && caps.bookmarks,
            "{caps:?}"
        );
        assert_eq!(caps.send_flags(), ["-L", "-e", "-c"]);
        assert!(Capabilities::from_usage(ZFS_FUSE_USAGE).send_flags().is_empty());
        // `[-t type` sits on a continuation line in OpenZFS's usage: not detected from the
        // first line, which only matters for sanoid (not for this tool).
        assert!(!caps.get_type);
    }

    #[test]
    fn the_newest_creation_wins_and_children_are_skipped() {
        let out = "tank/c/web\t1700000000\n\
tank/c/web@autosnap_a\t1700000100\n\
tank/c/web@autosnap_c\t1700000300\n\
tank/c/web@autosnap_b\t1700000200\n\
tank/c/web/child@newer\t1800000000\n\
tank/c/webby@other\t1900000000\n";
        let times = parse_creation_times(out, "tank/c/web").unwrap();
        assert_eq!(times.dataset, Some(1_700_000_000));
        assert_eq!(times.newest_snapshot, Some(("autosnap_c".into(), 1_700_000_300)));
        let bare = parse_creation_times("tank/c/web\t1700000000\n", "tank/c/web").unwrap();
        assert_eq!(bare, CreationTimes { dataset: Some(1_700_000_000), newest_snapshot: None });
        let err = parse_creation_times("tank/c/web@x\tsoon\n", "tank/c/web").unwrap_err();
        assert!(err.to_string().contains("tank/c/web@x"), "{err}");
    }

    #[test]
    fn parsable_lists_parse_and_skip_children() {
        let out = "tank/containers/web@a\t18000000000000000001\t100\ntank/containers/web/x@b\t5\t7\n";
        let snaps = parse_snapshot_list(out, "tank/containers/web").unwrap();
        assert_eq!(
            snaps,
            vec![Snapshot {
                dataset: "tank/containers/web".into(),
                name: "a".into(),
                guid: 18_000_000_000_000_000_001,
                createtxg: 100
            }]
        );
        assert!(parse_snapshot_list("tank/containers/web@a\t15.5E\t100\n", "tank/containers/web").is_err());
    }

    #[test]
    fn get_output_is_joined_per_snapshot() {
        let out = "tank/containers/web\tguid\t1\ntank/containers/web\tcreatetxg\t2\ntank/containers/web@a\tguid\t11\ntank/containers/web@a\tcreatetxg\t20\ntank/containers/web@b\tcreatetxg\t30\ntank/containers/web@b\tguid\t12\n";
        let snaps = parse_snapshot_get(out, "tank/containers/web").unwrap();
        assert_eq!(snaps.len(), 2);
        assert_eq!((snaps[1].name.as_str(), snaps[1].guid, snaps[1].createtxg), ("b", 12, 30));
    }

    #[test]
    fn held_snapshots_are_read_from_userrefs_and_holds() {
        let refs = "t/c/web\t-\nt/c/web@a\t0\nt/c/web@b\t1\nt/c/web@c\t2\nt/c/web/x@d\t1\n";
        assert_eq!(parse_held(refs, "t/c/web"), vec!["b", "c"]);
        let holds = "t/c/web@b\tterrarium-backup\tWed Dec  2 18:00 2026\nt/c/web@c\tkeep\tWed Dec  2 18:00 2026\nt/c/web@c  terrarium-backup  Wed Dec  2 18:00 2026\n";
        assert_eq!(parse_holds(holds, "t/c/web", HOLD_TAG), vec!["b", "c"]);
    }

    #[test]
    fn sends_are_full_or_incremental_with_intermediates() {
        let zfs = Zfs::new();
        assert_eq!(zfs.send_cmd("t/c/w@b", None, &[]).display(), "zfs send -- t/c/w@b");
        assert_eq!(zfs.send_cmd("t/c/w@b", Some("t/c/w@a"), &[]).display(), "zfs send -I t/c/w@a -- t/c/w@b");
        assert_eq!(zfs.send_cmd("t/c/w@b", None, &["-L", "-e", "-c"]).display(), "zfs send -L -e -c -- t/c/w@b");
    }
}

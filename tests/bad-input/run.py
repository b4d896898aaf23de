#!/usr/bin/env python3
"""Bad-input suite: every case feeds one tool one bad input and checks that it is refused
well: the documented exit code, a message that names the input and the fix, no panic,
and no change under --root beyond what the tool documents.

    tests/bad-input/run.py [--bin-dir DIR] [--filter SUBSTR] [-v]

Cases live in cases/*.yaml (see cases/README.md for the keys). A case marked
`known_finding` describes a bug found while writing it: it still states what a correct
tool must do, is reported as "finding" and does not fail the run.
"""
import argparse, base64, copy, ctypes, fnmatch, glob, hashlib, json, os, re, shutil, signal, socket, stat, subprocess, sys, tempfile, time
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT = 10  # seconds; a tool that hangs on bad input is a failure
# Programs that act on the host. Each gets a stand-in that refuses (exit 1) unless
# stubs/ has a better one, and the stand-ins come first on PATH: a case never reaches
# the real lxc, zfs, systemctl, ufw or Ansible of this machine.
REFUSE = ["lxd", "zpool", "systemctl", "syncoid", "sanoid", "ansible-playbook", "ssh", "snap",
          "journalctl", "lsblk", "sfdisk", "blkid", "wipefs", "sgdisk", "parted", "zstd", "sudo"]
KEYS = {"name", "tool", "args", "root", "env", "stdin", "config", "config_text", "files", "modes", "labels",
        "instances_text", "stubs", "s3_objects", "exit", "names", "fix", "absent", "stream", "may_change",
        "known_finding"}  # see cases/README.md
def deep_merge(base, patch):
    """The case's `config` patch over the valid base config; the value "<delete>" drops a key."""
    for key, value in patch.items():
        if value == "<delete>":
            base.pop(key, None)
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = value
    return base


def fill(text, places):
    """Replace {root}, {tmp}, {instances}, {s3} and {bucket} only: labels and configs hold other braces."""
    for name, value in places.items():
        text = text.replace("{" + name + "}", value)
    return text


def snapshot(root):
    """Every entry under root: relative path -> (type, mode, sha256 or link target)."""
    tree = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(dirpath, name)
            mode = os.lstat(path).st_mode
            digest = (hashlib.sha256(open(path, "rb").read()).hexdigest() if stat.S_ISREG(mode)
                      else os.readlink(path) if stat.S_ISLNK(mode) else "")
            tree[os.path.relpath(path, root)] = (stat.S_IFMT(mode), stat.S_IMODE(mode), digest)
    return tree


def s3_key(rel, bucket):
    """The key of the bucket's object that s3s-fs stores at data/rel: the object itself
    (bucket/key) or its metadata (.bucket-B64.object-B64.*.json); else None."""
    if rel.startswith(bucket + "/"):
        return rel[len(bucket) + 1:]
    b64 = lambda s: base64.urlsafe_b64encode(s.encode()).decode().rstrip("=")  # noqa: E731
    match = re.match(rf"\.bucket-{b64(bucket)}\.object-([\w-]+)\.", rel)
    return base64.urlsafe_b64decode(match[1] + "=" * (-len(match[1]) % 4)).decode() if match else None


def instances_json(labels):
    """`labels: {name: label}` as `lxc list --format=json`: running, with an address, created in order."""
    out = []
    for n, (name, label) in enumerate(labels.items(), start=1):
        out.append({"name": name, "status": "Running", "created_at": f"2026-01-01T00:00:{n:02d}Z",
                    "config": {} if label is None else {"user.proxy": label},
                    "state": {"network": {"eth0": {"host_name": f"veth{n}", "type": "broadcast", "addresses": [
                        {"family": "inet", "address": f"10.0.0.{n + 10}", "scope": "global"}]}}}})
    return json.dumps(out)


def lay_out(case, tmp, places, stubs, s3_data):
    """The root tree (base plus the case's files and config), the instance list, the stand-ins,
    the case's bucket."""
    root = places["root"]
    shutil.copytree(os.path.join(HERE, "base"), root)
    with open(os.path.join(root, "etc/terrarium/config.yaml")) as f:
        config = yaml.safe_load(f)
    text = case.get("config_text")
    if text is None and "config" in case:
        deep_merge(config, copy.deepcopy(case["config"]))
        if isinstance(config.get("s3"), dict) and config["s3"].get("endpoint") == "{s3}":
            config["s3"]["bucket"] = "{bucket}"  # a case that talks to the server uses its own bucket
        text = yaml.safe_dump(config, allow_unicode=True, sort_keys=False)
    files = dict(case.get("files", {}))
    if text is not None:  # an explicit file entry (null: no config at all) wins
        files.setdefault("etc/terrarium/config.yaml", text)
    for rel, content in files.items():
        path = os.path.join(root, fill(rel, places))
        if content is None:  # `null` removes a base file
            os.remove(path)
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(fill(content, places))
    # Git keeps no modes: the config and secrets are 0600 on a real host, the rest 0644.
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            secret = "/secrets/" in path or name == "config.yaml"
            os.chmod(path, 0o600 if secret else 0o644)
    for rel, mode in case.get("modes", {}).items():
        os.chmod(os.path.join(root, rel), int(str(mode), 8))
    text = case.get("instances_text")
    if text is None and "labels" in case:
        text = instances_json(case["labels"])
    with open(places["instances"], "w") as f:
        f.write(fill(text or "[]", places))
    own = os.path.join(tmp, "stubs")
    os.makedirs(own)
    for name, script in case.get("stubs", {}).items():
        with open(os.path.join(own, name), "w") as f:
            f.write(fill(script, places))
        os.chmod(os.path.join(own, name), 0o755)
    # s3s-fs keeps object `key` of a bucket as the file <data>/<bucket>/<key>.
    if "s3_objects" in case or "{bucket}" in (files.get("etc/terrarium/config.yaml") or ""):
        os.makedirs(os.path.join(s3_data, places["bucket"]))
    for key, content in case.get("s3_objects", {}).items():
        path = os.path.join(s3_data, places["bucket"], fill(key, places))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(fill(content, places))
    return f"{own}:{stubs}:/usr/bin:/bin"


def run_case(case, bin_dir, stubs, s3_url, s3_data, bucket):
    """Run one case; return a list of problems (empty: it passed)."""
    with tempfile.TemporaryDirectory(prefix="bad-input-") as tmp:
        places = {"root": os.path.join(tmp, "root"), "tmp": tmp,
                  "instances": os.path.join(tmp, "instances.json"), "s3": s3_url, "bucket": bucket}
        path = lay_out(case, tmp, places, stubs, s3_data)
        for name in ("home", "tmpdir"):
            os.makedirs(os.path.join(tmp, name))
        # A clean environment: nothing of the caller's (TERRARIUM_ROOT, secrets) leaks in.
        env = {"PATH": path, "HOME": os.path.join(tmp, "home"), "TMPDIR": os.path.join(tmp, "tmpdir"),
               "LANG": "C.UTF-8", "TERRARIUM_LOG_FORMAT": "human"}
        if not case.get("root", True):  # a case that gives its own --root: still a scratch tree
            env["TERRARIUM_ROOT"] = places["root"]
        env.update({k: fill(str(v), places) for k, v in case.get("env", {}).items()})
        args = [fill(str(a), places) for a in case.get("args", [])]
        if case.get("root", True):
            args = ["--root", places["root"]] + args
        before, s3_before = snapshot(places["root"]), snapshot(s3_data)
        stdin = case.get("stdin")
        if not os.access(os.path.join(bin_dir, case["tool"]), os.X_OK):
            return [f"{bin_dir}/{case['tool']} is missing: run cargo build --workspace --bins"], "", ""
        # A session of its own, so a hang takes the tool and whatever it started down together.
        proc = subprocess.Popen([os.path.join(bin_dir, case["tool"])] + args, env=env, cwd=tmp,
                                stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            raw_out, raw_err = proc.communicate(None if stdin is None else fill(stdin, places).encode(), TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.communicate()
            return [f"no answer within {TIMEOUT} s (a hang)"], "", ""
        case["command"] = " ".join([case["tool"]] + [repr(a) if not a or " " in a else a for a in args]).replace(
            places["root"], "<root>").replace(tmp, "<tmp>")
        after, s3_after = snapshot(places["root"]), snapshot(s3_data)
        out = raw_out.decode(errors="replace").replace(places["root"], "<root>")
        err = raw_err.decode(errors="replace").replace(places["root"], "<root>")
        problems = []
        if proc.returncode != case["exit"]:
            problems.append(f"exit {proc.returncode}, expected {case['exit']}")
        text = out if case.get("stream") == "stdout" else err
        for want in case.get("names", []) + case.get("fix", []):
            if fill(str(want), {"root": "<root>"}) not in text:
                problems.append(f"{case.get('stream', 'stderr')} lacks {want!r}")
        # Secrets and raw control characters must never be echoed.
        problems += [f"output shows {s!r}" for s in case.get("absent", []) if str(s) in out + err]
        problems += [f"stderr has {bad!r}" for bad in ("panicked", "RUST_BACKTRACE", "internal error") if bad in err]
        changed = [rel for rel in sorted(set(before) | set(after)) if before.get(rel) != after.get(rel)]
        allowed = [rel for rel in changed if any(fnmatch.fnmatch(rel, g) for g in case.get("may_change", []))]
        for rel in changed:
            # A directory made to hold an allowed file is part of that change.
            if rel not in allowed and not any(a.startswith(rel + "/") for a in allowed):
                what = "created" if rel not in before else "removed" if rel not in after else "changed"
                problems.append(f"{rel} {what}")
        # No bad input may change a bucket. The whole data directory counts: beside the
        # buckets s3s-fs keeps each stored object's metadata (so storing an object again,
        # unchanged, still shows) and unfinished multipart uploads; a read writes nothing.
        s3_changes = {}  # problem -> None: an object and its two metadata files make one line
        for rel in sorted(set(s3_before) | set(s3_after)):
            key = s3_key(rel, bucket)
            if s3_before.get(rel) == s3_after.get(rel) or (
                    key and any(fnmatch.fnmatch("s3:" + key, g) for g in case.get("may_change", []))):
                continue
            what = "created" if rel not in s3_before else "removed" if rel not in s3_after else "changed"
            kind = "multipart upload left over" if ".upload" in rel else "S3 write"
            s3_changes[f"{kind}: {rel if key is None else key if rel.startswith(bucket) else key + ' (metadata)'} {what}"] = None
        return problems + list(s3_changes), out, err


def load_cases(filter_text):
    cases = []
    for path in sorted(glob.glob(os.path.join(HERE, "cases", "*.yaml"))):
        with open(path) as f:
            doc = yaml.safe_load(f)
        area = os.path.basename(path)[:-5]
        defaults = doc.get("defaults", {})
        for case in doc["cases"]:
            merged = {**copy.deepcopy(defaults), **case}
            # A case's args and may_change replace the file's defaults; env and files add up.
            merged["may_change"] = case.get("may_change", defaults.get("may_change", []))
            merged["env"] = {**defaults.get("env", {}), **case.get("env", {})}
            merged["files"] = {**defaults.get("files", {}), **case.get("files", {})}
            merged["name"] = f"{area}/{case['name']}"
            unknown = set(merged) - KEYS
            if unknown or not merged.get("names") or "fix" not in merged or "exit" not in merged:
                sys.exit(f"bad-input: {merged['name']}: needs exit, names and fix; unknown keys {sorted(unknown)}")
            if filter_text in merged["name"]:
                cases.append(merged)
    names = [c["name"] for c in cases]
    if len(set(names)) != len(names):
        sys.exit(f"bad-input: duplicate case names: {sorted({n for n in names if names.count(n) > 1})}")
    return cases


def isolate_network():
    """Re-run this script in a network namespace of its own with only loopback up: no case
    can reach a real issuer, ZITADEL or S3 (DNS fails at once), and the suite's own S3
    server on 127.0.0.1 still answers. Without unshare (or the right to use it), say so and go on."""
    if os.environ.get("BAD_INPUT_NETNS") == "1" or not shutil.which("unshare") or not shutil.which("ip"):
        return
    flags = ["--net"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
    if subprocess.run(["unshare", *flags, "true"], capture_output=True).returncode != 0:
        print("bad-input: cannot unshare the network; cases run with the host's network", file=sys.stderr)
        return
    os.environ["BAD_INPUT_NETNS"] = "1"
    os.execvp("unshare", ["unshare", *flags, "sh", "-c", 'ip link set lo up && exec "$0" "$@"',
                          sys.executable, os.path.abspath(__file__), *sys.argv[1:]])


def start_s3(data, log):
    """The real S3 server of the test kit (s3s-fs) on loopback for the whole run, with the
    key the cases configure (AKIATEST) and the secret of base/: a tool that signs wrongly
    is refused as it would be by a real provider."""
    program = shutil.which("s3s-fs")
    if not program:  # never skip: the manifest cases are half of what restore must refuse
        sys.exit("bad-input: s3s-fs (the S3 server the cases read from) is missing: run tests/install-deps")
    with open(os.path.join(HERE, "base/etc/terrarium/secrets/s3-secret-key")) as f:
        secret = f.read().strip()
    for _ in range(3):  # the port is free when picked, but another process may take it first
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        # PR_SET_PDEATHSIG: the server dies with the runner, even a runner killed with -9.
        server = subprocess.Popen([program, "--host", "127.0.0.1", "--port", str(port), "--access-key", "AKIATEST",
                                   "--secret-key", secret, data], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                  preexec_fn=lambda: ctypes.CDLL(None).prctl(1, signal.SIGKILL))
        deadline = time.monotonic() + 10
        while server.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return server, f"http://127.0.0.1:{port}"
            except OSError:
                time.sleep(0.02)
        server.kill()
        server.wait()
    log.seek(0)
    sys.exit("bad-input: s3s-fs did not start; its log:\n" + log.read()[-2000:])


def main():
    isolate_network()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/terrarium-tests/target"))
    parser.add_argument("--bin-dir", default=os.path.join(target, "debug"))
    parser.add_argument("--filter", default="", help="run only cases whose name contains SUBSTR")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the output of failing cases")
    opts = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a kill still stops the server below
    with tempfile.TemporaryDirectory(prefix="bad-input-stubs-") as stubs, \
            tempfile.TemporaryDirectory(prefix="bad-input-s3-") as s3_tmp:
        s3_data = os.path.join(s3_tmp, "data")
        os.mkdir(s3_data)
        with open(os.path.join(s3_tmp, "s3s-fs.log"), "w+") as log:
            server, s3_url = start_s3(s3_data, log)
        for name in REFUSE:
            with open(os.path.join(stubs, name), "w") as f:
                f.write(f'#!/bin/sh\necho "{name} stand-in: refusing to run {name} $*" >&2\nexit 1\n')
        for path in glob.glob(os.path.join(HERE, "stubs", "*")):
            shutil.copy(path, stubs)
        for name in os.listdir(stubs):
            os.chmod(os.path.join(stubs, name), 0o755)
        passed, failed, findings = 0, [], []
        try:
            for n, case in enumerate(load_cases(opts.filter), start=1):
                problems, out, err = run_case(case, opts.bin_dir, stubs, s3_url, s3_data, f"case-{n}")
                for name in os.listdir(s3_data):  # the next case starts from an empty server
                    path = os.path.join(s3_data, name)
                    shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
                finding = case.get("known_finding")
                if not problems:
                    passed += 1
                    print(f"ok   {case['name']}" + ("  (known_finding no longer reproduces: drop the mark)" if finding else ""))
                    continue
                if finding:
                    findings.append(case["name"])
                    print(f"finding {case['name']}: {finding} [{'; '.join(problems)}]")
                else:
                    failed.append(case["name"])
                    print(f"FAIL {case['name']}: {'; '.join(problems)}")
                if opts.verbose:
                    print(f"  command: {case.get('command', case['tool'])}")
                    print("  stdout: " + out.strip().replace("\n", "\n          ")[:2000])
                    print("  stderr: " + err.strip().replace("\n", "\n          ")[:2000])
        finally:
            server.kill()
            server.wait()
    print(f"bad-input: {passed} passed, {len(failed)} failed, {len(findings)} known findings")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

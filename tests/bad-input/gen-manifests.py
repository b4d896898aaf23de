#!/usr/bin/env python3
"""Writes cases/manifests.yaml: S3 manifests that are not what terrarium-backup export writes."""
import json, os, yaml
P = "terrarium/host1/web/"
S1, S2 = "autosnap_2026-11-27_00:00:01_daily", "autosnap_2026-11-28_00:00:01_daily"
def full(snap=S1, guid="111", txg=100):
    return {"schema_version": 1, "host": "host1", "instance": "web", "dataset": "terrarium/containers/web",
            "snapshot": {"name": snap, "guid": guid, "createtxg": txg}, "base": None, "kind": "full",
            "object_key": P + snap + ".zfs.zst", "raw_bytes": 10, "compressed_bytes": 5, "sha256": "a" * 64,
            "compression": "zstd", "zstd_level": 3, "tool_version": "0.1.0",
            "started_at": "2026-11-27T03:00:00Z", "finished_at": "2026-11-27T03:01:00Z"}
def incr(base_guid="111"):
    m = full(S2, "222", 200)
    m.update(kind="incremental", base={"name": S1, "guid": base_guid, "createtxg": 100},
             started_at="2026-11-28T03:00:00Z", finished_at="2026-11-28T03:01:00Z")
    return m
def objs(manifest_text, snap=S2, stream=True, extra=None):
    o = {P + snap + ".manifest.json": manifest_text}
    if stream:
        o[P + snap + ".zfs.zst"] = "12345"
    o.update(extra or {})
    return o
good_full = {P + S1 + ".manifest.json": json.dumps(full()), P + S1 + ".zfs.zst": "12345"}
def bad(mutate, **kw):
    m = incr(); mutate(m); return dict(good_full, **objs(json.dumps(m), **kw))
def setv(path, value):
    def f(m):
        d = m
        for p in path[:-1]: d = d[p]
        d[path[-1]] = value
    return f
K = P + S2 + ".manifest.json"
variants = [
    ("not-json", dict(good_full, **objs("{")), [K, "not a Terrarium backup manifest"]),
    ("empty-object", dict(good_full, **objs("{}")), [K, "missing field"]),
    ("json-list", dict(good_full, **objs("[1,2]")), [K, "not a Terrarium backup manifest"]),
    ("schema-too-new", bad(setv(["schema_version"], 3)), [K, "schema version 3"]),
    # An encrypted stream's manifest is schema 2: a schema-1 manifest claiming encryption
    # did not come from export.
    ("encryption-on-schema-1", bad(setv(["encryption"], {"scheme": "age", "recipients": ["age:" + "c" * 64],
                                                         "plaintext_sha256": "b" * 64})), [K, "schema_version"]),
    ("schema-zero", bad(setv(["schema_version"], 0)), [K, "schema_version"]),
    ("kind-unknown", bad(setv(["kind"], "differential")), [K, "differential"]),
    ("incremental-without-base", bad(setv(["base"], None)), [K, "base"]),
    ("base-not-older", bad(setv(["base", "createtxg"], 300)), [K, "base.createtxg"]),
    ("base-guid-equals", bad(setv(["base", "guid"], "222")), [K, "base.guid"]),
    ("sha256-short", bad(setv(["sha256"], "abc")), [K, "sha256"]),
    ("compression-gzip", bad(setv(["compression"], "gzip")), [K, "compression", "gzip"]),
    ("compressed-bytes-zero", bad(setv(["compressed_bytes"], 0)), [K, "compressed_bytes"]),
    ("finished-before-started", bad(setv(["finished_at"], "2026-11-28T02:00:00Z")), [K, "finished_at"]),
    ("guid-not-number", bad(setv(["snapshot", "guid"], "abc")), [K, "GUID `abc`"]),
    ("guid-negative", bad(setv(["snapshot", "guid"], -5)), [K, "guid"]),
    ("snapshot-name-slash", bad(setv(["snapshot", "name"], "a/b")), [K, "snapshot.name"]),
    ("started-at-not-a-date", bad(setv(["started_at"], "yesterday")), [K, "started_at"]),
    ("empty-host", bad(setv(["host"], "")), [K, "host"]),
    ("out-of-place-instance", bad(setv(["instance"], "db")), [K, "db"]),
    ("object-key-elsewhere", bad(setv(["object_key"], "terrarium/host2/db/x.zfs.zst"), extra={"terrarium/host2/db/x.zfs.zst": "12345"}),
     [K, "names stream `terrarium/host2/db/x.zfs.zst`", "remove it, or move it back"]),
    ("raw-bytes-string", bad(setv(["raw_bytes"], "ten")), [K, "raw_bytes"]),
]
cases = []
# verify reports every manifest problem (exit 5) naming the key and the field.
for name, objects, names in variants:
    case = {"name": f"verify-{name}", "tool": "terrarium-backup", "args": ["verify", "--instance", "web"],
            "s3_objects": objects, "exit": 5, "names": names, "fix": ["remove"]}
    if name == "schema-too-new":
        case["fix"] = ["upgrade terrarium-backup"]
    cases.append(case)
# restore must not go on from a manifest it cannot trust, and must say what to do.
RESTORE = ["--instance", "web", "--source", "s3", "--dry-run"]
for name, objects, names in variants:
    if name in ("not-json", "schema-zero", "sha256-short", "compression-gzip"):
        cases.append({"name": f"restore-{name}", "tool": "terrarium-restore", "args": RESTORE, "s3_objects": objects,
                      "exit": 5, "names": names, "fix": ["--at"]})
    if name == "schema-too-new":
        cases.append({"name": f"restore-{name}", "tool": "terrarium-restore", "args": RESTORE, "s3_objects": objects,
                      "exit": 5, "names": names, "fix": ["upgrade terrarium-backup"]})
    if name == "out-of-place-instance":
        cases.append({"name": f"restore-{name}", "tool": "terrarium-restore", "args": RESTORE, "s3_objects": objects,
                      "exit": 5, "names": [K, "db"], "fix": ["terrarium-backup verify"]})
    if name == "object-key-elsewhere":
        cases.append({"name": f"restore-{name}", "tool": "terrarium-restore", "args": RESTORE, "s3_objects": objects,
                      "exit": 5, "names": [K, "terrarium/host2/db/x.zfs.zst"], "fix": ["remove it, or move it back"]})
    if name in ("not-json", "kind-unknown"):
        cases.append({"name": f"restore-list-{name}", "tool": "terrarium-restore", "args": ["list", "--instance", "web", "--source", "s3"],
                      "s3_objects": objects, "exit": 5, "names": names, "fix": ["terrarium-backup verify"]})
# chains: the missing link, the missing object, the wrong size
cases += [
    {"name": "restore-broken-chain", "tool": "terrarium-restore", "args": ["--instance", "web", "--source", "s3", "--dry-run"],
     "s3_objects": dict(good_full, **objs(json.dumps(incr("999")))), "exit": 5, "names": [S2, "GUID 999", "whose manifest is missing"], "fix": ["nothing was changed"]},
    {"name": "restore-stream-missing", "tool": "terrarium-restore", "args": ["--instance", "web", "--source", "s3", "--dry-run"],
     "s3_objects": dict(good_full, **objs(json.dumps(incr()), stream=False)), "exit": 5, "names": [P + S2 + ".zfs.zst", "is missing"], "fix": ["nothing was changed"]},
    {"name": "verify-stream-size-mismatch", "tool": "terrarium-backup", "args": ["verify", "--instance", "web"],
     "s3_objects": dict(good_full, **objs(json.dumps(incr()), extra={P + S2 + ".zfs.zst": "1"})), "exit": 5, "names": [P + S2 + ".zfs.zst", "has 1 bytes"], "fix": ["its manifest says 5"]},
    {"name": "prune-skips-bad-instance", "tool": "terrarium-backup", "args": ["prune", "--dry-run"],
     "s3_objects": dict(good_full, **objs("{")), "exit": 3, "names": [K], "fix": ["not pruning this instance"]},
    {"name": "restore-unknown-instance-s3", "tool": "terrarium-restore", "args": ["--instance", "db", "--source", "s3", "--dry-run"],
     "s3_objects": good_full, "exit": 2, "names": ["unknown instance db"], "fix": ["instances there: web"]},
    {"name": "restore-from-unknown-host", "tool": "terrarium-restore", "args": ["--instance", "web", "--source", "s3", "--from-host", "host9", "--dry-run"],
     "s3_objects": good_full, "exit": 2, "names": ["host9"], "fix": ["instances there"]},
]
doc = {"defaults": {"config": {"s3": {"enabled": True, "endpoint": "{s3}", "bucket": "backups", "prefix": "terrarium",
                                      "access_key": "AKIATEST", "secret_key_file": "/etc/terrarium/secrets/s3-secret-key"}}},
       "cases": cases}
head = """# Generated by tests/bad-input/gen-manifests.py (the manifests are long JSON): edit that, then run it.
# Backup manifests in S3 (served by the suite's real S3 server, s3s-fs) that are not
# what terrarium-backup export writes: unreadable, invalid, out of place, or a chain
# with a missing link. Restore and verify must refuse before anything changes (exit 5:
# verification failed, nothing was changed), naming the manifest key and what to do.
"""
open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases/manifests.yaml"), "w").write(head + yaml.safe_dump(doc, sort_keys=False, width=200, allow_unicode=True))
print(len(cases))

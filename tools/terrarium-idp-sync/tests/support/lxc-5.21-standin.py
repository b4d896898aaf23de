#!/usr/bin/env python3
"""A STAND-IN for the parts of LXD 5.21+ that Debian's LXD 5.0 lacks. Tests only.

Installed as `lxc` first on PATH in front of the real client. It answers:

- `lxc query /1.0`: the REAL server's answer, with the API extensions `oidc`,
  `oidc_groups_claim` and `access_management` added and the stand-in's `oidc.*`
  keys merged into `config`;
- `lxc config set oidc.* VALUE`: stores the key (LXD 5.0 rejects `oidc.*` keys);
- `lxc query [-X METHOD] [--data JSON] /1.0/auth/...`: the auth groups and
  identity-provider-groups endpoints, with the request and answer shapes of LXD's
  REST API documentation (`/1.0/auth/groups`, `/1.0/auth/identity-provider-groups`,
  `?recursion=1`, POST to create, PUT to replace, 404/409 like LXD).

Everything else goes to the real `lxc` (STANDIN_REAL_LXC). State lives in the JSON file
STANDIN_STATE; every call is appended to STANDIN_LOG, one JSON line each.
"""

import json
import os
import sys

STATE = os.environ["STANDIN_STATE"]
REAL = os.environ["STANDIN_REAL_LXC"]
LOG = os.environ.get("STANDIN_LOG")
EXTENSIONS = ["oidc", "oidc_groups_claim", "access_management"]


def load():
    try:
        with open(STATE) as f:
            return json.load(f)
    except FileNotFoundError:
        return {"config": {}, "groups": [], "idp_groups": []}


def save(state):
    tmp = STATE + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.replace(tmp, STATE)


def log(args):
    if LOG:
        with open(LOG, "a") as f:
            f.write(json.dumps(args) + "\n")


def fail(message, code=1):
    sys.stderr.write("Error: " + message + "\n")
    sys.exit(code)


def real(args):
    os.execv(REAL, [REAL] + args)


def real_output(args):
    import subprocess
    return subprocess.run([REAL] + args, check=True, capture_output=True, text=True).stdout


def query(args):
    method, data, path = "GET", None, None
    i = 0
    while i < len(args):
        if args[i] in ("-X", "--request"):
            method = args[i + 1]
            i += 2
        elif args[i] in ("-d", "--data"):
            data = json.loads(args[i + 1])
            i += 2
        elif args[i].startswith("-"):
            i += 1
        else:
            path = args[i]
            i += 1
    base, _, params = path.partition("?")
    if base == "/1.0" and method == "GET":
        server = json.loads(real_output(["query", "/1.0"]))
        server["api_extensions"] = server.get("api_extensions", []) + EXTENSIONS
        server.setdefault("config", {}).update(load()["config"])
        print(json.dumps(server))
        return
    if not base.startswith("/1.0/auth/"):
        real(["query"] + args)
    state = load()
    parts = base.split("/")[3:]  # after /1.0/auth
    kind = {"groups": "groups", "identity-provider-groups": "idp_groups"}.get(parts[0])
    if kind is None:
        fail("not found", 1)
    items = state[kind]
    if len(parts) == 1:
        if method == "GET":
            if "recursion=1" in params:
                print(json.dumps(items))
            else:
                print(json.dumps(["/1.0/auth/%s/%s" % (parts[0], g["name"]) for g in items]))
            return
        if method == "POST":
            if any(g["name"] == data["name"] for g in items):
                fail("Group already exists")
            if kind == "groups":
                items.append({"name": data["name"], "description": data.get("description", ""), "permissions": data.get("permissions", []), "identities": {}, "identity_provider_groups": []})
            else:
                missing = [g for g in data.get("groups", []) if not any(x["name"] == g for x in state["groups"])]
                if missing:
                    fail("Failed to find group %r" % missing[0])
                items.append({"name": data["name"], "groups": data.get("groups", [])})
            save(state)
            print("{}")
            return
    elif len(parts) == 2:
        found = [g for g in items if g["name"] == parts[1]]
        if not found:
            fail("Not Found")
        if method == "GET":
            print(json.dumps(found[0]))
            return
        if method == "PUT":
            if kind == "groups":
                found[0]["description"] = data.get("description", "")
                found[0]["permissions"] = data.get("permissions", [])
            else:
                found[0]["groups"] = data.get("groups", [])
            save(state)
            print("{}")
            return
        if method == "DELETE":
            items.remove(found[0])
            save(state)
            print("{}")
            return
    fail("method %s not allowed on %s" % (method, base))


def main():
    args = sys.argv[1:]
    log(args)
    if args[:1] == ["query"]:
        query(args[1:])
    elif args[:2] == ["config", "set"] and len(args) == 4 and args[2].startswith("oidc."):
        state = load()
        state["config"][args[2]] = args[3]
        save(state)
    elif args[:2] == ["config", "unset"] and len(args) == 3 and args[2].startswith("oidc."):
        state = load()
        state["config"].pop(args[2], None)
        save(state)
    else:
        real(args)


main()

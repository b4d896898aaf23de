#!/usr/bin/python3
"""Keep the playbook in step with the Rust side of its contracts:
- vars.schema.json declares exactly the names terrarium_common::config::ansible_vars emits,
  and a complete example of them (vars/converge.json) validates;
- group_vars/all/ports.yml equals tools/terrarium-common/src/ports.rs;
- the proxy sync markers in filter_plugins/terrarium.py equal ports.rs's;
- the filters behave (block kept verbatim, absent markers give "", ufw's hex comments).
Exits 1 with one line per mismatch."""
import json
import pathlib
import re
import sys

import jsonschema
import yaml

repo = pathlib.Path(__file__).resolve().parents[2]
errors = []

schema = json.loads((repo / "ansible/vars.schema.json").read_text())
jsonschema.Draft7Validator.check_schema(schema)
rust = (repo / "tools/terrarium-common/src/config/ansible_vars.rs").read_text()
body = rust.split("let vars = json!({", 1)[1].split("});", 1)[0]
rust_names = set(re.findall(r'^\s*"(terrarium_[a-z0-9_]+)":', body, re.M))
schema_names = set(schema["properties"])
if rust_names != schema_names:
    errors.append(f"schema vs ansible_vars.rs: only in Rust {sorted(rust_names - schema_names)}, only in schema {sorted(schema_names - rust_names)}")
if set(schema["required"]) != schema_names:
    errors.append("schema: every contract variable must be required (ansible_vars emits all of them)")
example = json.loads((repo / "tests/ansible/vars/converge.json").read_text())
for error in jsonschema.Draft7Validator(schema).iter_errors(example):
    errors.append(f"vars/converge.json: {error.message}")
broken = dict(example, terrarium_idp_mode="oidc", terrarium_oidc_client_id=None)
if jsonschema.Draft7Validator(schema).is_valid(broken):
    errors.append("schema accepts oidc mode without a client id")

ports_rs = (repo / "tools/terrarium-common/src/ports.rs").read_text()
consts = dict(re.findall(r"pub const ([A-Z_0-9]+): (?:u16|u32|&str) = ([^;]+);", ports_rs))
consts = {k: v.strip('"').replace("_", "") if v[0].isdigit() else v.strip('"') for k, v in consts.items()}
ports = yaml.safe_load((repo / "ansible/group_vars/all/ports.yml").read_text())
pairs = {
    "terrarium_port_traefik_api": "TRAEFIK_API", "terrarium_port_lxd": "LXD", "terrarium_port_cockpit": "COCKPIT",
    "terrarium_port_oauth2_proxy": "OAUTH2_PROXY", "terrarium_port_oauth2_proxy_routes": "OAUTH2_PROXY_ROUTES",
    "terrarium_port_zitadel": "ZITADEL", "terrarium_traefik_web_entrypoint": "WEB_ENTRYPOINT",
    "terrarium_traefik_websecure_entrypoint": "WEBSECURE_ENTRYPOINT", "terrarium_traefik_cert_resolver": "CERT_RESOLVER",
    "terrarium_traefik_priority_core": "CORE_PRIORITY", "terrarium_traefik_priority_core_signin": "CORE_SIGNIN_PRIORITY",
}
for var, const in pairs.items():
    if str(ports.get(var)) != consts.get(const):
        errors.append(f"ports.yml {var}={ports.get(var)} but ports.rs {const}={consts.get(const)}")
if ports["terrarium_traefik_admin_middleware"] + "@file" != consts["ADMIN_AUTH_MIDDLEWARE"]:
    errors.append("ports.yml terrarium_traefik_admin_middleware differs from ports.rs ADMIN_AUTH_MIDDLEWARE")

sys.path.insert(0, str(repo / "ansible/filter_plugins"))
import terrarium as filters  # noqa: E402

if filters.MANAGED_BEGIN.strip() != consts["MANAGED_BEGIN"] or filters.MANAGED_END.strip() != consts["MANAGED_END"]:
    errors.append("filter_plugins/terrarium.py markers differ from ports.rs MANAGED_BEGIN/MANAGED_END")
block = '  tcp-2222:\n    address: ":2222/tcp"\n'
text = f"entryPoints:\n{filters.MANAGED_BEGIN}\n{block}{filters.MANAGED_END}\n  web:\n"
if filters.managed_block(text) != block:
    errors.append(f"managed_block lost the block: {filters.managed_block(text)!r}")
if filters.managed_block(f"entryPoints:\n{filters.MANAGED_BEGIN}\n{filters.MANAGED_END}\n") != "":
    errors.append("managed_block of an empty block is not empty")
if filters.managed_block("entryPoints:\n  web:\n") != "" or filters.managed_block(None) != "":
    errors.append("managed_block without markers is not empty")
if filters.hex_text("terrarium-firewall") != "terrarium-firewall".encode().hex():
    errors.append("hex_text is not ufw's comment encoding")

for error in errors:
    print(f"check-contract: {error}", file=sys.stderr)
if errors:
    sys.exit(1)
print(f"check-contract: ok ({len(schema_names)} variables, {len(pairs) + 1} names)")

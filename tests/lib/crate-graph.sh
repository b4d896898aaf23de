#!/usr/bin/env bash
# The crate graph's one rule (docs/architecture.md): a tool crate (one with a binary)
# never depends on another tool crate; tools share code through library crates.
# terrarium-manpages is the one exception: it renders every tool's clap definition.
# Only normal dependencies count: a tool's tests may drive another tool.
# Prints each offending edge; exits 1 if there is one.
set -euo pipefail

edges=$(cargo metadata --format-version 1 --no-deps | jq -r '
  [.packages[] | select(any(.targets[]; .kind | index("bin")))] as $tools
  | ($tools | map(.name)) as $names
  | $tools[]
  | select(.name != "terrarium-manpages")
  | .name as $from
  | .dependencies[]
  | select(.kind == null and (.name as $to | $names | index($to)))
  | "\($from) -> \(.name)"')
if [ -n "$edges" ]; then
  echo "tool crates depending on tool crates (move the shared code into a library crate):"
  echo "$edges"
  exit 1
fi
echo "crate graph: no tool crate depends on another"

#!/bin/bash
# Test-only (terrarium-testkit): zfs-fuse's `zfs get` has no `-t TYPE`, which sanoid uses
# (`zfs get -Hrpt snapshot ...`). Drop the type option and filter the output instead: a
# snapshot is a name holding '@'. Every other subcommand goes to the real zfs untouched.
# Never installed on a host; production OpenZFS has `-t`.
real=@REAL_ZFS@
[ "${1:-}" = get ] || exec "$real" "$@"
shift
types=""
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --) args+=("$@"); break ;;
    -t) types=$2; shift 2; continue ;;
    -t*) types=${1#-t}; shift; continue ;;
    -[!-]*t)           # bundled flags ending in t (-Hrpt snapshot): the next word is the type
      args+=("${1%t}"); types=$2; shift 2; continue ;;
  esac
  args+=("$1"); shift
done
[ -n "$types" ] || exec "$real" get "${args[@]}"
"$real" get "${args[@]}" | awk -v types=",$types," '
  { snapshot = index($1, "@") > 0 }
  types ~ /,all,/ { print; next }
  snapshot && types ~ /,snapshot,/ { print; next }
  !snapshot && (types ~ /,filesystem,/ || types ~ /,volume,/) { print }'
exit "${PIPESTATUS[0]}"

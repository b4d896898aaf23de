# shellcheck shell=bash
# Drive a Debian guest under QEMU (software emulation: this machine's KVM never starts a
# guest). Source it, then:
#   vm_start IMAGE_DIR WORK [DISK_SIZE...]   boot a copy-on-write copy of the image with
#                                            extra virtio disks (/dev/vdb, /dev/vdc, ...)
#   vm_wait_running [SECONDS]                until `systemctl is-system-running` answers
#                                            running or degraded; prints the state
#   vm_ssh COMMAND...                        run as root in the guest: its output, its exit code
#   vm_copy_in SRC DEST / vm_copy_out SRC DEST
#   vm_poweroff                              clean shutdown (hard stop after 90 s)
#   vm_kill                                  QEMU quits at once, as a power cut
#   vm_boot_again                            power on again after vm_kill or vm_poweroff:
#                                            the same disks, the same forwards
#   vm_loopback_forward IP PORT HOST_PORT    the option that lets the guest reach this
#                                            machine's 127.0.0.1:HOST_PORT as IP:PORT
#   vm_host_forward HOST_PORT GUEST_PORT     the option that lets this machine reach the
#                                            guest's TCP GUEST_PORT as 127.0.0.1:HOST_PORT
# Networking is QEMU's user network with restrict=on: the guest reaches nothing but the
# forwards given here. VM_GUESTFWD holds extra options (comma-separated, from the two
# functions above) set before vm_start; the guest's sshd is always forwarded from a
# free port on 127.0.0.1. The serial console goes to WORK/serial.log.

vm_image=""
vm_work=""
vm_port=""

vm_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A chardev guestfwd (`-tcp:HOST:PORT`) connects once, when QEMU starts: a second
# connection from the guest fails. `cmd:` runs its command for every connection.
vm_loopback_forward() { # IP PORT HOST_PORT
  printf 'guestfwd=tcp:%s:%s-cmd:socat STDIO TCP:127.0.0.1:%s' "$1" "$2" "$3"
}

vm_host_forward() { # HOST_PORT GUEST_PORT
  printf 'hostfwd=tcp:127.0.0.1:%s-:%s' "$1" "$2"
}

vm_qemu=()
vm_start() { # IMAGE_DIR WORK [DISK_SIZE...]
  vm_image=$1 vm_work=$2
  shift 2
  vm_port=$(vm_free_port)
  qemu-img create -q -f qcow2 -b "$vm_image/root.img" -F raw "$vm_work/root.qcow2"
  local drives=(-drive "file=$vm_work/root.qcow2,format=qcow2,if=virtio")
  local n=0 size
  for size in "$@"; do
    n=$((n + 1))
    truncate -s "$size" "$vm_work/disk$n.raw"
    drives+=(-drive "file=$vm_work/disk$n.raw,format=raw,if=virtio")
  done
  local net="user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:$vm_port-:22${VM_GUESTFWD:+,$VM_GUESTFWD}"
  # shellcheck disable=SC2054 # the commas are QEMU's, inside single arguments
  vm_qemu=(qemu-system-x86_64 -accel tcg -m "${VM_MEMORY:-2048}" -smp 2
    -kernel "$vm_image/vmlinuz" -initrd "$vm_image/initrd.img"
    -append "root=/dev/vda rw console=ttyS0 net.ifnames=0 panic=-1"
    "${drives[@]}" -netdev "$net" -device virtio-net-pci,netdev=net0
    -display none -serial "file:$vm_work/serial.log" -no-reboot
    -pidfile "$vm_work/qemu.pid" -daemonize)
  "${vm_qemu[@]}"
}

vm_boot_again() {
  vm_alive && { echo "vm: still running" >&2; return 1; }
  "${vm_qemu[@]}"
}

vm_ssh() {
  ssh -q -i "$vm_image/id_ed25519" -p "$vm_port" -o BatchMode=yes -o ConnectTimeout=10 \
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
    root@127.0.0.1 -- "$@"
}

vm_wait_running() { # [SECONDS]
  local deadline=$((SECONDS + ${1:-300})) state=""
  while [ "$SECONDS" -lt "$deadline" ]; do
    if ! vm_alive; then echo "vm: QEMU exited during boot (serial log: $vm_work/serial.log)" >&2; return 1; fi
    state=$(vm_ssh systemctl is-system-running --wait 2>/dev/null) || true
    case "$state" in running|degraded) echo "$state"; return 0 ;; esac
    sleep 2
  done
  echo "vm: not running after ${1:-300} s (state '${state}'; serial log: $vm_work/serial.log)" >&2
  return 1
}

vm_copy_in() { # SRC DEST (a file or a directory, copied with tar over ssh)
  local dest=$2
  if [ -d "$1" ]; then
    vm_ssh mkdir -p "$dest" && tar -C "$1" -cf - . | vm_ssh tar -C "$dest" -xf -
  else
    vm_ssh mkdir -p "$(dirname "$dest")" && vm_ssh "cat > '$dest'" < "$1"
  fi
}

vm_copy_out() { # SRC DEST (a file)
  vm_ssh cat "$1" > "$2"
}

vm_alive() {
  [ -s "$vm_work/qemu.pid" ] && kill -0 "$(cat "$vm_work/qemu.pid")" 2>/dev/null
}

vm_poweroff() {
  vm_alive || return 0
  vm_ssh systemctl --no-block poweroff || true
  local deadline=$((SECONDS + 90))
  while vm_alive && [ "$SECONDS" -lt "$deadline" ]; do sleep 1; done
  vm_alive && { echo "vm: no power-off after 90 s; stopping QEMU" >&2; vm_kill; return 1; }
  return 0
}

vm_kill() {
  if vm_alive; then kill -9 "$(cat "$vm_work/qemu.pid")" 2>/dev/null || true; fi
  for _ in $(seq 50); do vm_alive || break; sleep 0.1; done
}

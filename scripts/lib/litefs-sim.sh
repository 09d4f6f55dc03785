# Sourced by the two cluster demos (scripts/cluster-demo.sh, scripts/cluster-demo-cli.sh):
# litefs-sim with two nodes, n1 (the lease holder: primary) and n2 (replica), as real FUSE
# mounts in a temp dir of the caller's, and taking it all down again.
#
#   sim_need_fuse NAME      exit 77 (after saying why) unless root and /dev/fuse are there
#   sim_start DIR SIM_BIN   DIR/n1 and DIR/n2 mounted, control socket DIR/control.sock,
#                           event log DIR/sim.log; writes DIR/ctl (below)
#   DIR/ctl COMMAND ...     one control command (litefs-sim/README.md), printed as
#                           `[control] lease n2: ok lease=n2`; exit 1 when the reply is `err ...`
#   sim_stop                the sim quits (killed after 5 s), whatever is still mounted is
#                           lazily unmounted; for the caller's EXIT trap, before it removes DIR
#
# The sim's stdin is a pipe from the sourcing script (--exit-on-stdin-eof): even when that
# script is killed outright, the sim unmounts both nodes and exits.

sim_dir=
sim_pid=

sim_mounted() { awk -v p="$1" '$5 == p { found = 1 } END { exit !found }' /proc/self/mountinfo; }

sim_need_fuse() {
  if [ "$(id -u)" != 0 ] || ! { : <>/dev/fuse; } 2>/dev/null; then
    echo "$1: FUSE unavailable: litefs-sim needs root and /dev/fuse" >&2
    exit 77
  fi
}

sim_start() {
  sim_dir=$1
  local bin=$2
  cat >"$sim_dir/ctl" <<'PY'
#!/usr/bin/env python3
import os, socket, sys
cmd = " ".join(sys.argv[1:])
s = socket.socket(socket.AF_UNIX)
s.connect(os.path.join(os.path.dirname(os.path.abspath(__file__)), "control.sock"))
s.sendall((cmd + "\n").encode())
reply = b""
while not reply.endswith(b"\n"):
    chunk = s.recv(4096)
    if not chunk:
        break
    reply += chunk
reply = reply.decode().strip()
print(f"[control] {cmd}: {reply}", flush=True)
sys.exit(0 if reply == "ok" or reply.startswith("ok ") else 1)
PY
  chmod +x "$sim_dir/ctl"
  coproc SIM { exec "$bin" --backing "$sim_dir/backing" --node n1="$sim_dir/n1" --node n2="$sim_dir/n2" \
    --control "$sim_dir/control.sock" --log "$sim_dir/sim.log" --exit-on-stdin-eof >"$sim_dir/sim.out" 2>&1; }
  sim_pid=$SIM_PID
  local _
  for _ in $(seq 100); do
    sim_mounted "$sim_dir/n1" && sim_mounted "$sim_dir/n2" && [ -S "$sim_dir/control.sock" ] && return 0
    kill -0 "$sim_pid" 2>/dev/null || { echo "litefs-sim exited:" >&2; cat "$sim_dir/sim.out" >&2; return 1; }
    sleep 0.1
  done
  echo "litefs-sim: the mounts did not appear in 10 s" >&2
  return 1
}

sim_stop() {
  local _ n
  if [ -n "$sim_pid" ]; then
    "$sim_dir/ctl" quit >/dev/null 2>&1
    for _ in $(seq 50); do kill -0 "$sim_pid" 2>/dev/null || break; sleep 0.1; done
    kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
    sim_pid=
  fi
  if [ -n "$sim_dir" ]; then
    for n in n1 n2; do sim_mounted "$sim_dir/$n" && umount -l "$sim_dir/$n"; done
  fi
  return 0
}

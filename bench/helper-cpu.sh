#!/usr/bin/env bash
# The helper's CPU at idle and under a paced load of new TCP connections, in two
# throw-away namespaces joined by a veth pair (198.18.78.0/24). The helper runs as
# `portcullis helper` does (rules, attribution, DNS snooping, history, IPC server; no
# GUI connected: the default action allow answers). Prints % of one core.
#   bash bench/helper-cpu.sh            # idle 20 s, then 1,000 connections/s for 20 s
#   RATE=2000 SECS=10 bash bench/helper-cpu.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
RATE="${RATE:-1000}"
SECS="${SECS:-20}"
IDLE_SECS="${IDLE_SECS:-20}"
tag="$$"
cli="pcl-cpu-c$tag"
srv="pcl-cpu-s$tag"
state="$(mktemp -d)"
pids=()

cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  ip netns del "$cli" 2>/dev/null || true
  ip netns del "$srv" 2>/dev/null || true
  rm -rf "$state"
}
trap cleanup EXIT

ip netns add "$cli"
ip netns add "$srv"
ip -n "$cli" link add "vc$tag" type veth peer name "vs$tag" netns "$srv"
ip -n "$cli" addr add 198.18.78.1/24 dev "vc$tag"
ip -n "$srv" addr add 198.18.78.2/24 dev "vs$tag"
for ns in "$cli" "$srv"; do
  ip -n "$ns" link set lo up
done
ip -n "$cli" link set "vc$tag" up
ip -n "$srv" link set "vs$tag" up
# Closed connections must not pile up as CLOSE/TIME_WAIT entries at this rate.
ip netns exec "$cli" sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_close=1 2>/dev/null || true

# Server: accept and close.
ip netns exec "$srv" python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.18.78.2", 9500)); s.listen(4096)
while True:
    c, _ = s.accept(); c.close()
' &
pids+=($!)

(cd "$root" && npm run -s build:ts)
ip netns exec "$cli" node ${NODE_ARGS:-} "$root/bin/portcullis.js" helper --queue 9 --state-dir "$state" \
  --socket "$state/helper.sock" --default-action allow --log-level warn 2>"$state/helper.log" &
helper=$!
pids+=("$helper")
for _ in $(seq 1 100); do
  ip netns exec "$cli" iptables-save 2>/dev/null | grep -q 'NFQUEUE --queue-num 9' && break
  sleep 0.1
done
sleep 2

ticks() { awk '{print $14 + $15}' "/proc/$helper/stat"; }
hz="$(getconf CLK_TCK)"
pct() { awk -v t="$1" -v hz="$hz" -v s="$2" 'BEGIN { printf "%.2f", 100 * t / hz / s }'; }

a="$(ticks)"
sleep "$IDLE_SECS"
b="$(ticks)"
idle="$(pct $((b - a)) "$IDLE_SECS")"

# Clients: RATE new connections a second in all, paced, for SECS seconds, from
# CLIENTS processes (one sequential Python client alone cannot keep 1,000/s).
CLIENTS="${CLIENTS:-4}"
client() {
  ip netns exec "$cli" python3 -c '
import socket, sys, time
rate, secs = int(sys.argv[1]), float(sys.argv[2])
start = time.monotonic(); n = ok = 0
while True:
    t = time.monotonic() - start
    if t >= secs: break
    due = start + n / rate
    wait = due - time.monotonic()
    if wait > 0: time.sleep(wait)
    try:
        c = socket.create_connection(("198.18.78.2", 9500), timeout=2); c.close(); ok += 1
    except OSError:
        pass
    n += 1
print(ok, n)
' "$1" "$SECS"
}
a="$(ticks)"
for _ in $(seq 1 "$CLIENTS"); do client $((RATE / CLIENTS)) >"$state/client.$_" & done
wait $(jobs -p | tail -n "$CLIENTS")
b="$(ticks)"
ok="$(awk '{ok += $1} END {print ok}' "$state"/client.*)"
tried="$(awk '{n += $2} END {print n}' "$state"/client.*)"
load="$(pct $((b - a)) "$SECS")"
rss="$(awk '/VmRSS/ {print $2}' "/proc/$helper/status")"
achieved="$(awk -v n="$ok" -v s="$SECS" 'BEGIN { printf "%.0f", n / s }')"

echo "helper CPU, % of one core: idle ${idle} (over ${IDLE_SECS} s); at ${achieved} new TCP connections/s (${ok} of ${tried} connected, asked ${RATE}/s for ${SECS} s): ${load}; RSS $((rss / 1024)) MB"

#!/usr/bin/env bash
# Whole-process measurements of the cockpit in a real terminal (tmux):
#  1. bytes written to the terminal per minute while only the clock changes
#  2. idle CPU of the cockpit during that minute
#  3. RSS after 100k log lines
#  4. key-to-screen latency while 10k log lines per second arrive
#  5. time to first frame with every source unreachable
# Usage: benches/measure-tui.sh [SECONDS] [ONLY]  (default 60 s for 1 and 2;
#        ONLY=idle runs just 1 and 2). WARMUP (default 70 s) lets the
#        running step's elapsed time reach minutes: the steady state.
# Needs: cargo, tmux, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
only=${2:-all}
warmup=${WARMUP:-70}
cargo build --release --quiet
bin=$PWD/target/release/rolldeck
work=$(mktemp -d)
sock=rolldeck-measure-$$
tm() { tmux -L "$sock" "$@"; }
cleanup() { tm kill-server 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
now_ms() { date +%s%3N; }
pane_pid() { tm display-message -p -t "$1" '#{pane_pid}'; }
# The rolldeck process under the pane's shell.
rd_pid() { pgrep -n -P "$(pane_pid "$1")" rolldeck || pane_pid "$1"; }

config() { # name, plan steps (TOML)
  cat > "$work/$1.toml" <<TOML
service = "measure-$1"
state_dir = "$work/state"
[environment]
name = "bench"
[[sources.health]]
name = "down"
url = "http://127.0.0.1:9/health"
timeout = "1s"
[[sources.health]]
name = "blackhole"
url = "http://10.255.255.1:9/health"
timeout = "2s"
[actions.spam]
argv = ["python3", "-c", "import sys,time\nfor i in range(\$LINES):\n    print('log line', i, 'with a few words of output'); print('log line', i, 'b'); sys.stdout.flush() if i % 50 == 0 else None\n    time.sleep(\$SLEEP)"]
timeout = "1h"
[actions.flood]
argv = ["python3", "-c", "import sys\nfor i in range(100000): print('log line', i, 'with a few words of output')"]
timeout = "5m"
[plans.p]
$2
TOML
}

if [ "$only" != busy ]; then
# 1 + 2: a release waiting for approval; nothing changes but the clock.
config idle '[[plans.p.steps]]
kind = "approval"
message = "measure"'
tm new-session -d -s idle -x 160 -y 48 "$bin run --config $work/idle.toml"
sleep "$warmup"
pid=$(rd_pid idle)
tck=$(getconf CLK_TCK)
read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
tm pipe-pane -o -t idle "cat > $work/bytes"
sleep "$secs"
tm pipe-pane -t idle
read -r u2 s2 < <(awk '{print $14, $15}' "/proc/$pid/stat")
bytes=$(stat -c %s "$work/bytes")
echo "1. bytes to the terminal while only the clock changes: $((bytes * 60 / secs)) bytes/min"
echo "2. idle CPU of the cockpit: $(python3 -c "print(f'{(($u2+$s2)-($u1+$s1))/$tck/$secs*100:.3f}')") % of a core"
tm kill-session -t idle
[ "$only" = idle ] && exit 0

# 3: RSS after 100k log lines.
config flood '[[plans.p.steps]]
kind = "action"
action = "flood"
[[plans.p.steps]]
kind = "approval"
message = "measure"'
tm new-session -d -s flood -x 160 -y 48 "$bin run --config $work/flood.toml"
i=0
until tm capture-pane -p -t flood | grep -q "WAITING APPROVAL"; do
  i=$((i + 1)); [ $i -gt 600 ] && { echo "flood never finished" >&2; exit 1; }; sleep 0.1
done
sleep 1
pid=$(rd_pid flood)
echo "3. RSS after 100k log lines: $(( $(awk '/VmRSS/ {print $2}' "/proc/$pid/status") / 1024 )) MiB"
tm kill-session -t flood
fi

# 4: key-to-screen latency while 10k lines/s arrive.
config busy '[[plans.p.steps]]
kind = "action"
action = "spam"'
sed -i 's/\$LINES/600000/; s/\$SLEEP/0.0001/' "$work/busy.toml"
tm new-session -d -s busy -x 160 -y 48 "$bin run --config $work/busy.toml"
sleep 4
lat=()
for k in 2 1 2 1 2 1 2 1 2 1; do
  before=$(tm capture-pane -p -t busy | sed -n 3p)
  t0=$(now_ms)
  tm send-keys -t busy z
  until [ "$(tm capture-pane -p -t busy | sed -n 3p)" != "$before" ]; do sleep 0.002; done
  lat+=($(( $(now_ms) - t0 )))
  sleep 0.3
done
rate=$(tm capture-pane -p -t busy | grep -o '[0-9]* lines' | head -1 || true)
echo "4. key-to-screen latency under load (zoom toggle, 10 presses, ms): ${lat[*]} (logs: $rate)"
tm kill-session -t busy
[ "$only" = busy ] && exit 0

# 5: time to first frame with every source unreachable.
config dark '[[plans.p.steps]]
kind = "approval"
message = "measure"'
best=999999
for n in 1 2 3 4 5; do
  rm -rf "$work/state"
  t0=$(now_ms)
  tm new-session -d -s "ff$n" -x 160 -y 48 "$bin run --config $work/dark.toml"
  until tm capture-pane -p -t "ff$n" | grep -q "1 Pipeline"; do sleep 0.002; done
  ms=$(( $(now_ms) - t0 ))
  [ $ms -lt $best ] && best=$ms
  tm kill-session -t "ff$n"
done
echo "5. time to first frame, every source unreachable: ${best} ms (best of 5, includes tmux start)"

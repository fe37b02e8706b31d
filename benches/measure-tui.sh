#!/usr/bin/env bash
# Whole-process measurements of the cockpit in a real terminal (tmux, 160x48),
# side by side with `btm` and `htop` when they are installed:
#  1. bytes written to the terminal per minute and CPU (% of one core)
#     during an active canary (two checks every 5 s against two fake
#     tracks, their verdicts flowing into the logs), for rolldeck, btm and
#     htop in the same run; and for rolldeck waiting for an approval in
#     its first minute (only clocks change)
#  2. (the same idle figures, kept for older notes)
#  3. RSS after 100k log lines
#  4. key-to-screen latency while 10k log lines per second arrive
#  5. time to first frame with every source unreachable
# Usage: benches/measure-tui.sh [SECONDS] [ONLY]  (default 60 s measured
#        after WARMUP, default 10 s; ONLY=idle runs just 1).
# Needs: cargo, tmux, python3; btm and htop are optional. Not used by tests.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
only=${2:-all}
warmup=${WARMUP:-10}
cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/rolldeck
work=$(mktemp -d)
sock=rolldeck-measure-$$
tracks_pid=
tm() { tmux -L "$sock" "$@"; }
cleanup() {
  tm kill-server 2>/dev/null || true
  [ -n "$tracks_pid" ] && kill "$tracks_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
now_ms() { date +%s%3N; }
pane_pid() { tm display-message -p -t "$1" '#{pane_pid}'; }
# The measured process under the pane's shell (the pane's own process when
# tmux runs the command directly).
proc_pid() { pgrep -n -P "$(pane_pid "$1")" "$2" || pane_pid "$1"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rd_pid() { proc_pid "$1" rolldeck; }

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
# 1: an active canary (rolldeck, btm, htop side by side) and rolldeck idle.
python3 benches/fake-tracks.py "$work/ports" & tracks_pid=$!
i=0
until [ -s "$work/ports" ]; do
  i=$((i + 1)); [ $i -gt 100 ] && { echo "fake tracks did not start" >&2; exit 1; }; sleep 0.1
done
{ read -r stable; read -r canary; } < "$work/ports"
config active "[[plans.p.steps]]
kind = \"traffic\"
weight = 10
[[plans.p.steps]]
kind = \"analysis\"
duration = \"30m\"
[[sources.scrape]]
name = \"stable\"
url = \"http://127.0.0.1:$stable/metrics\"
interval = \"5s\"
[[sources.scrape]]
name = \"canary\"
url = \"http://127.0.0.1:$canary/metrics\"
interval = \"5s\"
[tracks]
label = \"track\"
baseline = \"stable\"
canary = \"canary\"
baseline_target = \"stable\"
canary_target = \"canary\"
[[checks]]
name = \"error-rate\"
kind = \"error_rate\"
metric = \"http_requests_total\"
error_matcher = 'code=~\"5..\"'
window = \"10s\"
max = 0.05
interval = \"5s\"
for = \"10s\"
[[checks]]
name = \"latency-p95\"
kind = \"latency_quantile\"
metric = \"http_request_duration_seconds\"
quantile = 0.95
window = \"10s\"
max = 0.3
interval = \"5s\"
for = \"10s\"
[actions.traffic]
argv = [\"true\"]
[[rollback]]
kind = \"traffic\"
weight = 0"
config idle '[[plans.p.steps]]
kind = "approval"
message = "measure"'
declare -A cmd=(
  [rolldeck]="$bin run --config $work/active.toml --state-dir $work/state-active"
  [idle]="$bin run --config $work/idle.toml --state-dir $work/state-idle"
)
command -v btm >/dev/null && cmd[btm]="btm"
command -v htop >/dev/null && cmd[htop]="htop"
for s in "${!cmd[@]}"; do tm new-session -d -s "$s" -x 160 -y 48 "${cmd[$s]}"; done
sleep "$warmup"
declare -A pid t1
for s in "${!cmd[@]}"; do
  name=${cmd[$s]%% *}; name=${name##*/}
  pid[$s]=$(proc_pid "$s" "$name")
  t1[$s]=$(cpu_ticks "${pid[$s]}")
  tm pipe-pane -o -t "$s" "cat > $work/bytes-$s"
done
sleep "$secs"
tck=$(getconf CLK_TCK)
printf '1. %-34s %12s %12s\n' "160x48, $secs s after ${warmup} s" "bytes/min" "CPU % core"
for s in rolldeck btm htop idle; do
  [ -n "${cmd[$s]:-}" ] || { [ "$s" = btm ] || [ "$s" = htop ] && printf '   %-34s %12s\n' "$s" "not installed"; continue; }
  tm pipe-pane -t "$s"
  t2=$(cpu_ticks "${pid[$s]}")
  bytes=$(stat -c %s "$work/bytes-$s")
  case $s in
    rolldeck) what="rolldeck, active canary" ;;
    idle) what="rolldeck, waiting for approval" ;;
    *) what="$s" ;;
  esac
  printf '   %-34s %12d %12s\n' "$what" $((bytes * 60 / secs)) \
    "$(python3 -c "print(f'{($t2-${t1[$s]})/$tck/$secs*100:.3f}')")"
done
for s in "${!cmd[@]}"; do tm kill-session -t "$s"; done
kill "$tracks_pid" 2>/dev/null || true; tracks_pid=
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

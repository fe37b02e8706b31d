#!/usr/bin/env bash
# Whole-process measurements of rolldeck (not run by the tests):
#   idle CPU and RSS of a headless run waiting in an analysis step.
# Usage: benches/measure.sh [SECONDS]   (default 60)
# Needs: cargo, python3 (serves a static /metrics and /health).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
cargo build --release --quiet
bin=$PWD/target/release/rolldeck
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

mkdir -p "$work/www"
{
  echo '# TYPE http_requests counter'
  echo 'http_requests_total{code="200"} 100000'
  echo 'http_requests_total{code="500"} 12'
  echo '# TYPE http_request_duration_seconds histogram'
  for le in 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 +Inf; do
    echo "http_request_duration_seconds_bucket{le=\"$le\"} 100012"
  done
} > "$work/www/metrics"
echo ok > "$work/www/health"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 "$port" --directory "$work/www" >/dev/null 2>&1 &
pids+=($!)
sleep 1

cat > "$work/rolldeck.toml" <<TOML
service = "measure"
state_dir = "$work/state"
[environment]
name = "bench"
[[sources.scrape]]
name = "stable"
url = "http://127.0.0.1:$port/metrics"
interval = "5s"
[[sources.scrape]]
name = "canary"
url = "http://127.0.0.1:$port/metrics"
interval = "5s"
[[sources.health]]
name = "canary"
url = "http://127.0.0.1:$port/health"
interval = "5s"
[tracks]
baseline_target = "stable"
canary_target = "canary"
[[checks]]
name = "error-rate"
kind = "error_rate"
metric = "http_requests_total"
error_matcher = 'code=~"5.."'
max = 0.05
interval = "10s"
inconclusive_limit = 1000
[[checks]]
name = "latency-p95"
kind = "latency_quantile"
metric = "http_request_duration_seconds"
quantile = 0.95
max = 0.5
interval = "10s"
inconclusive_limit = 1000
[actions.noop]
argv = ["true"]
[plans.p]
[[plans.p.steps]]
kind = "analysis"
duration = "1h"
[[rollback_when]]
health = "canary"
TOML

"$bin" run --headless --config "$work/rolldeck.toml" > "$work/out.jsonl" &
rd=$!
pids+=($rd)
sleep 5
tck=$(getconf CLK_TCK)
read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$rd/stat")
sleep "$secs"
read -r u2 s2 < <(awk '{print $14, $15}' "/proc/$rd/stat")
rss=$(awk '/VmRSS/ {print $2}' "/proc/$rd/status")
cpu=$(python3 -c "print(f'{(($u2+$s2)-($u1+$s1))/$tck/$secs*100:.3f}')")
lines=$(wc -l < "$work/out.jsonl")
echo "idle headless run in an analysis step over ${secs}s: CPU ${cpu} % of a core, RSS $((rss/1024)) MiB, ${lines} event lines"

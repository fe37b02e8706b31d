#!/usr/bin/env bash
# Makes the README's screenshots from real runs of the demo:
# tmux capture-pane -e → examples/screenshot_html.rs (the vt100 crate
# emulates the screen; every cell becomes a fixed-size box, so no glyph
# can shift a column) → headless Chromium → PNG.
# Needs: tmux, chromium, fonts-dejavu (Debian packages), a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-$PWD/target}
# ROLLDECK_BIN=path uses that binary instead of a fresh release build (the
# HTML converter is then built in the dev profile).
if [ -n "${ROLLDECK_BIN:-}" ]; then
  bin=$ROLLDECK_BIN
  cargo build --quiet --example screenshot_html
  to_html=$target/debug/examples/screenshot_html
else
  cargo build --release --quiet --bin rolldeck --example screenshot_html
  bin=$target/release/rolldeck
  to_html=$target/release/examples/screenshot_html
fi
out=$PWD/screenshots
sock=rolldeck-shots-$$
tm() { tmux -L "$sock" "$@"; }
trap 'tm kill-server 2>/dev/null || true' EXIT

shot() { # name cols rows
  local name=$1 w=$2 h=$3 html
  html=$(mktemp --suffix=.html)
  tm capture-pane -e -p -t demo | "$to_html" "$w" "$h" > "$html"
  # The page is cols × 9 + 8 by rows × 17 + 8 CSS pixels.
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --window-size=$((w * 9 + 8)),$((h * 17 + 8)) \
    --screenshot="$out/$name.png" "file://$html" >/dev/null 2>&1
  rm -f "$html"
  echo "wrote screenshots/$name.png"
}

wait_for() { # text timeout
  local i=0
  until tm capture-pane -p -t demo | grep -qF -- "$1"; do
    i=$((i + 1)); [ "$i" -gt "$(($2 * 4))" ] && { echo "timed out waiting for: $1" >&2; tm capture-pane -p -t demo >&2; exit 1; }
    sleep 0.25
  done
}

wait_re() { # extended regexp, timeout
  local i=0
  until tm capture-pane -p -t demo | grep -qE -- "$1"; do
    i=$((i + 1)); [ "$i" -gt "$(($2 * 4))" ] && { echo "timed out waiting for: $1" >&2; tm capture-pane -p -t demo >&2; exit 1; }
    sleep 0.25
  done
}

# 1. The demo mid-analysis at 160x48.
tm new-session -d -s demo -x 160 -y 48 "TERM=xterm-256color $bin demo --scenario good; sleep 120"
wait_for "▶ analysis" 120
# Both checks evaluated, and the chart's 10 s window filled with points.
wait_re 'error-rate .*✓ pass' 90
wait_re 'latency-p95 .*✓ pass' 90
sleep 10
shot demo-analysis-160x48 160 48
# 2. The 80x24 tab view (canary tab).
tm resize-window -t demo -x 80 -y 24
tm send-keys -t demo 2
sleep 1
shot tabs-80x24 80 24
# 2b. The help at 80x24: incident keys first, scrolls.
tm send-keys -t demo '?'
wait_for "help — Esc closes" 10
shot help-80x24 80 24
tm send-keys -t demo Escape
# 3. The rollback confirmation.
tm resize-window -t demo -x 160 -y 48
tm send-keys -t demo R
wait_for "ROLL BACK the release" 10
shot rollback-confirmation 160 48
tm send-keys -t demo Escape
tm kill-session -t demo

# 4. A failed canary with its reason.
tm new-session -d -s demo -x 160 -y 48 "TERM=xterm-256color $bin demo --scenario bad; sleep 120"
wait_for "ROLLED BACK" 300
tm send-keys -t demo 2 z
sleep 1
shot failed-canary 160 48

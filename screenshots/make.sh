#!/usr/bin/env bash
# Makes the README's screenshots from real runs of the demo:
# tmux capture-pane -e → aha (ANSI → HTML) → headless Chromium → PNG.
# Needs: tmux, aha, chromium (Debian packages), a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release/rolldeck
out=$PWD/screenshots
sock=rolldeck-shots-$$
tm() { tmux -L "$sock" "$@"; }
trap 'tm kill-server 2>/dev/null || true' EXIT

shot() { # name width height
  local name=$1 w=$2 h=$3 html
  html=$(mktemp --suffix=.html)
  tm capture-pane -e -p -t demo | aha --black --title "rolldeck" > "$html"
  # Monospace at 14px: ~8.4 px per column, 17 px per row.
  sed -i 's|<pre>|<pre style="font-family:DejaVu Sans Mono,monospace;font-size:14px;line-height:17px;margin:4px">|' "$html"
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --window-size=$((w * 85 / 10 + 10)),$((h * 17 + 12)) \
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

# 1. The demo mid-analysis at 160x48.
tm new-session -d -s demo -x 160 -y 48 "TERM=xterm-256color $bin demo --scenario good; sleep 120"
wait_for "▶ analysis" 60
wait_for "✓ pass" 30
sleep 3
shot demo-analysis-160x48 160 48
# 2. The 80x24 tab view (canary tab).
tm resize-window -t demo -x 80 -y 24
tm send-keys -t demo 2
sleep 1
shot tabs-80x24 80 24
# 3. The rollback confirmation.
tm resize-window -t demo -x 160 -y 48
tm send-keys -t demo R
wait_for "ROLL BACK the release" 10
shot rollback-confirmation 160 48
tm send-keys -t demo Escape
tm kill-session -t demo

# 4. A failed canary with its reason.
tm new-session -d -s demo -x 160 -y 48 "TERM=xterm-256color $bin demo --scenario bad; sleep 120"
wait_for "ROLLED BACK" 90
tm send-keys -t demo 2 z
sleep 1
shot failed-canary 160 48

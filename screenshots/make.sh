#!/usr/bin/env bash
# Makes the README's screenshots from real runs of the demo:
# tmux capture-pane -e → aha (ANSI → HTML) → headless Chromium → PNG.
# Needs: tmux, aha, chromium, perl (Debian packages), a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
# ROLLDECK_BIN=path uses that binary instead of a fresh release build.
if [ -n "${ROLLDECK_BIN:-}" ]; then
  bin=$ROLLDECK_BIN
else
  cargo build --release --quiet
  bin=${CARGO_TARGET_DIR:-$PWD/target}/release/rolldeck
fi
out=$PWD/screenshots
sock=rolldeck-shots-$$
tm() { tmux -L "$sock" "$@"; }
trap 'tm kill-server 2>/dev/null || true' EXIT

# aha draws the bright colours (8-15, e.g. the theme's bold bright red border)
# as `filter: contrast(70%) brightness(190%)` on the span, which brightens
# the span's background too: grey stripes on popups. Use the bright colour
# itself instead (xterm's bright palette). aha also writes `color:#;` for
# reverse video over the default background: that is black.
bright='BEGIN { %b = ("dimgray","#808080","red","#ff5f5f","lime","#5fff5f",
  "yellow","#ffff5f","#3333FF","#5f87ff","fuchsia","#ff5fff","aqua","#5fffff",
  "white","#ffffff") }
s{color:#;}{color:#000000;}g;
s{style="([^"]*?)filter: contrast\(70%\) brightness\(190%\);([^"]*)"}{
  my $s = "$1$2";
  $s =~ s/(?<=:)(dimgray|red|lime|yellow|#3333FF|fuchsia|aqua|white)(?=;)/$b{$1}/g;
  "style=\"$s\"";
}ge;'

shot() { # name width height
  local name=$1 w=$2 h=$3 html
  html=$(mktemp --suffix=.html)
  tm capture-pane -e -p -t demo | aha --black --title "rolldeck" | perl -p -e "$bright" > "$html"
  # Monospace at 14px: ~8.4 px per column, 17 px per row. A span's
  # background covers only the font's height (16.3 px): 1 px of padding
  # closes the gaps that would show as dark lines across popups.
  sed -i 's|<pre>|<style>pre span{padding:1px 0}</style><pre style="font-family:DejaVu Sans Mono,monospace;font-size:14px;line-height:17px;margin:4px">|' "$html"
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
wait_for "▶ analysis" 120
wait_for "✓ pass" 90
sleep 3
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

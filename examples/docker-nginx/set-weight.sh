#!/bin/sh
# set-weight.sh WEIGHT — send WEIGHT percent (0–100) of the requests that
# reach the example's nginx to green and the rest to blue.
#
# The `traffic` action of rolldeck.toml calls it; people may too. Steps:
#   1. write the new upstream block to upstream.conf.new (beside the live
#      upstream.conf, same directory: the rename below is atomic);
#   2. `nginx -t` a copy of nginx.conf that includes the new block instead
#      of the live one — on failure the new file is deleted, the live
#      config is untouched, nginx's message goes to stderr, exit 1;
#   3. rename upstream.conf.new over upstream.conf (the old one is kept as
#      upstream.conf.prev);
#   4. `nginx -s reload` (unless --no-reload) and wait until a worker of
#      the new generation runs, at most 5 s — if the reload fails the old
#      file is put back and the step fails.
#
# Environment: NGINX_PREFIX (the directory nginx.sh set up), BLUE_ADDR and
# GREEN_ADDR (host:port of the two containers), NGINX (default: nginx).
# A weight of 0 marks that side `down` (nginx weights start at 1).
set -eu

reload=1
if [ "${1:-}" = "--no-reload" ]; then
  reload=0
  shift
fi
w=${1:-}
case "$w" in
  '' | *[!0-9]*) echo "set-weight.sh: weight must be an integer 0-100, got '$w'" >&2; exit 2 ;;
esac
if [ "$w" -gt 100 ]; then
  echo "set-weight.sh: weight must be 0-100, got $w" >&2
  exit 2
fi
: "${NGINX_PREFIX:?set NGINX_PREFIX (the directory nginx.sh start set up)}"
: "${BLUE_ADDR:?set BLUE_ADDR (host:port of blue)}"
: "${GREEN_ADDR:?set GREEN_ADDR (host:port of green)}"
NGINX=${NGINX:-nginx}
conf="$NGINX_PREFIX/conf"
log="$NGINX_PREFIX/logs/error.log"

# One change at a time.
exec 9>"$conf/.set-weight.lock"
flock -w 10 9 || { echo "set-weight.sh: another weight change holds $conf/.set-weight.lock" >&2; exit 1; }

server() { # ADDR WEIGHT
  if [ "$2" -eq 0 ]; then
    echo "    server $1 down;"
  else
    echo "    server $1 weight=$2;"
  fi
}
new="$conf/upstream.conf.new"
{
  echo "# Written by set-weight.sh: green $w %, blue $((100 - w)) %."
  echo "upstream app {"
  server "$BLUE_ADDR" $((100 - w))
  server "$GREEN_ADDR" "$w"
  echo "}"
} >"$new"

# Test the whole config with the new block in place of the live one.
test_conf="$conf/nginx.test.conf"
sed "s#include $conf/upstream.conf;#include $new;#" "$conf/nginx.conf" >"$test_conf"
if ! out=$("$NGINX" -q -t -p "$NGINX_PREFIX" -e "$log" -c "$test_conf" 2>&1); then
  rm -f "$new" "$test_conf"
  echo "set-weight.sh: nginx -t refused the new weights; the running config is untouched: $(echo "$out" | tr '\n' ' ')" >&2
  exit 1
fi
rm -f "$test_conf"

if [ -f "$conf/upstream.conf" ]; then
  cp -p "$conf/upstream.conf" "$conf/upstream.conf.prev"
fi
mv -f "$new" "$conf/upstream.conf"
if [ "$reload" -eq 0 ]; then
  echo "green $w %, blue $((100 - w)) % (written, not reloaded)"
  exit 0
fi

# The workers of the master whose pid nginx.sh recorded.
master=$(cat "$NGINX_PREFIX/nginx.pid" 2>/dev/null || true)
workers() {
  for s in /proc/[0-9]*/stat; do
    # pid (comm) state ppid …; nginx's comm has no spaces.
    read -r pid _ _ ppid _ <"$s" 2>/dev/null || continue
    [ "$ppid" = "$master" ] && echo "$pid"
  done
  return 0
}
before=" $(workers | tr '\n' ' ') "
restore() {
  if [ -f "$conf/upstream.conf.prev" ]; then
    mv -f "$conf/upstream.conf.prev" "$conf/upstream.conf"
  fi
}
if ! out=$("$NGINX" -p "$NGINX_PREFIX" -e "$log" -c "$conf/nginx.conf" -s reload 2>&1); then
  restore
  echo "set-weight.sh: nginx -s reload failed; the old weights stay: $(echo "$out" | tr '\n' ' ')" >&2
  exit 1
fi
i=0
while :; do
  for p in $(workers); do
    case "$before" in
      *" $p "*) ;;
      *) echo "green $w %, blue $((100 - w)) %"; exit 0 ;;
    esac
  done
  i=$((i + 1))
  if [ "$i" -ge 50 ]; then
    restore
    echo "set-weight.sh: nginx did not start workers with the new config within 5 s; last lines of $log:" >&2
    tail -n 5 "$log" >&2 2>/dev/null || true
    exit 1
  fi
  sleep 0.1
done

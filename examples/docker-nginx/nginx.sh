#!/bin/sh
# nginx.sh start|stop — the example's nginx as a plain process (no
# container) under $NGINX_PREFIX: config in conf/, pid file, logs/, temp
# dirs; it listens on 127.0.0.1:$NGINX_PORT and proxies / to the weighted
# upstream `app` (blue and green) that set-weight.sh rewrites.
#
# start: needs NGINX_PREFIX, NGINX_PORT, BLUE_ADDR, GREEN_ADDR; writes the
#        config with all traffic on blue (set-weight.sh 0), tests it and
#        starts nginx (one worker, so the weighted round robin is exact).
# stop:  needs NGINX_PREFIX; stops nginx (SIGQUIT, SIGTERM after 5 s).
set -eu
: "${NGINX_PREFIX:?set NGINX_PREFIX to a directory for nginx's config, pid and logs}"
NGINX=${NGINX:-nginx}
here=$(cd "$(dirname "$0")" && pwd)
conf="$NGINX_PREFIX/conf"
log="$NGINX_PREFIX/logs/error.log"

case "${1:-}" in
start)
  : "${NGINX_PORT:?set NGINX_PORT (a free port on 127.0.0.1)}"
  mkdir -p "$conf" "$NGINX_PREFIX/logs" "$NGINX_PREFIX/tmp"
  cat >"$conf/nginx.conf" <<CONF
# Written by nginx.sh start.
worker_processes 1;
pid $NGINX_PREFIX/nginx.pid;
error_log $log notice;
events { worker_connections 512; }
http {
    access_log off;
    client_body_temp_path $NGINX_PREFIX/tmp/body;
    proxy_temp_path $NGINX_PREFIX/tmp/proxy;
    fastcgi_temp_path $NGINX_PREFIX/tmp/fastcgi;
    uwsgi_temp_path $NGINX_PREFIX/tmp/uwsgi;
    scgi_temp_path $NGINX_PREFIX/tmp/scgi;
    include $conf/upstream.conf;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://app;
        }
    }
}
CONF
  "$here/set-weight.sh" --no-reload 0 >/dev/null
  "$NGINX" -q -t -p "$NGINX_PREFIX" -e "$log" -c "$conf/nginx.conf"
  "$NGINX" -p "$NGINX_PREFIX" -e "$log" -c "$conf/nginx.conf"
  echo "nginx on 127.0.0.1:$NGINX_PORT (prefix $NGINX_PREFIX, pid $(cat "$NGINX_PREFIX/nginx.pid"))"
  ;;
stop)
  pid=$(cat "$NGINX_PREFIX/nginx.pid" 2>/dev/null || true)
  if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
    echo "nginx.sh: no nginx running under $NGINX_PREFIX"
    exit 0
  fi
  kill -QUIT "$pid"
  i=0
  while kill -0 "$pid" 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -eq 50 ]; then kill -TERM "$pid" 2>/dev/null || true; fi
    if [ "$i" -ge 100 ]; then kill -KILL "$pid" 2>/dev/null || true; break; fi
    sleep 0.1
  done
  echo "nginx stopped"
  ;;
*)
  echo "usage: nginx.sh start|stop (see README.md)" >&2
  exit 2
  ;;
esac

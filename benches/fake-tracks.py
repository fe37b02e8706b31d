#!/usr/bin/env python3
"""Two fake tracks (stable and canary) for benches/measure-tui.sh.

Each serves `/metrics` (Prometheus text format: the counter
`http_requests_total{code}` and the histogram `http_request_duration_seconds`,
growing with the wall clock: 80 requests/s, 0.2 % of them 500s, most under
50 ms) and `/health`. Ports are picked by the OS and written, one per line
(stable, then canary), to the file named by the first argument. Runs until
killed.
"""

import http.server
import sys
import threading
import time

BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]
# Share of requests at or under each bucket bound.
SHARE = [0.05, 0.2, 0.6, 0.9, 0.97, 0.99, 0.995, 0.999, 1.0, 1.0]
RATE = 80.0
START = time.time()


def metrics() -> bytes:
    n = (time.time() - START) * RATE
    errors = int(n * 0.002)
    total = int(n)
    out = [
        "# TYPE http_requests_total counter",
        f'http_requests_total{{code="200"}} {total - errors}',
        f'http_requests_total{{code="500"}} {errors}',
        "# TYPE http_request_duration_seconds histogram",
    ]
    for le, share in zip(BUCKETS, SHARE):
        out.append(f'http_request_duration_seconds_bucket{{le="{le}"}} {int(total * share)}')
    out.append(f'http_request_duration_seconds_bucket{{le="+Inf"}} {total}')
    out.append(f"http_request_duration_seconds_sum {total * 0.03:.3f}")
    out.append(f"http_request_duration_seconds_count {total}")
    return ("\n".join(out) + "\n").encode()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        body = metrics() if self.path == "/metrics" else b"ok\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_):
        pass


def main() -> None:
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler) for _ in range(2)]
    with open(sys.argv[1] + ".tmp", "w") as f:
        for s in servers:
            f.write(f"{s.server_address[1]}\n")
    # Renamed when complete: the reader never sees half the ports.
    import os

    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    for s in servers[1:]:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    servers[0].serve_forever()


if __name__ == "__main__":
    main()

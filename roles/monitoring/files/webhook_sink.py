"""The lab's Alertmanager receiver: appends every webhook notification it receives to a JSON-lines file.

Standard library only, run with the system's python3 by the monitoring role when monitoring_webhook_sink_enabled:
    python3 webhook_sink.py --listen 127.0.0.1:9095 --file /var/lib/heliogrid-webhook-sink/alerts.jsonl
Each line: {"received_at": <unix time>, "notification": <Alertmanager's JSON body>}. The system test and the
molecule scenario read the file; a production inventory names a real receiver (e-mail or its own webhook).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MAX_BODY = 1 << 20  # Alertmanager's notifications are a few kB; refuse anything much larger


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", required=True, help="ADDRESS:PORT")
    parser.add_argument("--file", required=True, type=Path, help="the JSON-lines file appended to")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY:
                self.send_error(413 if length else 411, f"a body of 1..{MAX_BODY} bytes is expected")
                return
            try:
                notification = json.loads(self.rfile.read(length))
            except ValueError as error:
                self.send_error(400, f"not JSON: {error}")
                return
            line = json.dumps({"received_at": time.time(), "notification": notification}, sort_keys=True)
            with lock, args.file.open("a", encoding="utf-8") as out:
                out.write(line + "\n")
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    ThreadingHTTPServer((host.strip("[]"), int(port)), Handler).serve_forever()


if __name__ == "__main__":
    main()

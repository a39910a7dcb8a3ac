"""A webhook receiver on 127.0.0.1 (ephemeral port), for alert and webhook tests."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """Records every JSON body it accepts (and every request's headers and raw body);
    answers with the queued statuses, then 200."""

    def __init__(self, statuses: list[int] | None = None):
        self.bodies: list[dict] = []
        self.requests: list[tuple[dict[str, str], bytes, int]] = []
        self.statuses = list(statuses or [])
        self.received = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                body = json.loads(raw)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.requests.append((dict(self.headers), raw, status))
                if status == 200:
                    receiver.bodies.append(body)
                    receiver.received.set()
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

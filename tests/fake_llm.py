"""A local OpenAI-compatible chat-completions server for tests and benchmarks.

A real HTTP server on 127.0.0.1 (ephemeral port) in a background thread. Its
answers are deterministic and steered by markers in the request's messages:

- `[[answer:TEXT]]`     reply TEXT
- `[[sleep:0.2]]`       wait that many seconds before replying
- `[[status:500]]`      always answer with that HTTP status
- `[[flaky:429:2]]`     the first 2 identical requests get 429, then a normal reply
- `[[malformed]]`       a 200 whose body is not JSON
- `[[hang]]`            wait `hang_seconds` (longer than a client's timeout)

Judge requests (the system prompt starts "You are grading") get "9" when the
graded answer contains "good", else "2". Anything else is answered
"echo: <last user message>". `delay` adds a fixed latency to every answer.

Run alone: `python tests/fake_llm.py --delay 0.05` prints its base URL.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MARKER_RE = re.compile(r"\[\[(answer|sleep|status|flaky|malformed|hang)(?::([^\]]*))?\]\]")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stall
    server: _Server

    def log_message(self, format, *args):  # quiet
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        fake = self.server.fake
        with fake.lock:
            fake.in_flight += 1
            fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
            fake.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": raw})
        try:
            self._answer(fake, raw)
        finally:
            with fake.lock:
                fake.in_flight -= 1

    def _send(self, status: int, body: bytes, headers: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _answer(self, fake: FakeLLM, raw: bytes):
        if self.path.rstrip("/") != "/v1/chat/completions":
            return self._send(404, b'{"error": {"message": "not found"}}')
        try:
            request = json.loads(raw)
            messages = request["messages"]
        except (ValueError, KeyError):
            return self._send(400, b'{"error": {"message": "bad request"}}')
        text = "\n".join(str(m.get("content", "")) for m in messages)
        markers = {name: value for name, value in MARKER_RE.findall(text)}
        if fake.delay:
            time.sleep(fake.delay)
        if "sleep" in markers:
            time.sleep(float(markers["sleep"]))
        if "hang" in markers:
            time.sleep(fake.hang_seconds)
        if "status" in markers:
            return self._send(int(markers["status"]), b'{"error": {"message": "forced status"}}')
        if "flaky" in markers:
            code, times = markers["flaky"].split(":")
            with fake.lock:
                fake.seen[raw] += 1
                seen = fake.seen[raw]
            if seen <= int(times):
                return self._send(int(code), b'{"error": {"message": "try again"}}', {"Retry-After": "0"})
        if "malformed" in markers:
            return self._send(200, b'{"choices": [ this is not json')
        answer = self._reply(messages, markers)
        body = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "model": request.get("model", ""),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": len(text.split()),
                "completion_tokens": len(answer.split()),
                "total_tokens": len(text.split()) + len(answer.split()),
            },
        }
        return self._send(200, json.dumps(body).encode())

    @staticmethod
    def _reply(messages: list[dict], markers: dict[str, str]) -> str:
        if messages and str(messages[0].get("content", "")).startswith("You are grading"):
            graded = str(messages[-1].get("content", "")).split("Answer to grade:", 1)[-1]
            return "9" if "good" in graded else "2"
        if "answer" in markers:
            return markers["answer"]
        users = [m for m in messages if m.get("role") == "user"]
        return "echo: " + str((users or messages)[-1].get("content", ""))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    fake: FakeLLM


class FakeLLM:
    def __init__(self, delay: float = 0.0, hang_seconds: float = 5.0):
        self.delay = delay
        self.hang_seconds = hang_seconds
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.seen: Counter = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeLLM:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    with FakeLLM(delay=args.delay) as fake:
        print(fake.base_url, flush=True)
        threading.Event().wait()

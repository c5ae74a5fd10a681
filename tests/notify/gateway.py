"""A real HTTP server on loopback that plays an SMS gateway: it records what it is asked, answers
as it is told to (failures, slowness), and honours the Idempotency-Key header as a good gateway
does: a key it has already accepted is answered again without a second SMS."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Gateway:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.delivered: dict[str, dict] = {}  # idempotency key -> the SMS, sent once
        self.script: list[tuple[int, float]] = []  # (status, delay) for the next requests
        self.on_request = None  # called with the request, before answering
        self.lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = self.headers.get("Idempotency-Key", "")
                request = {"key": key, "body": body, "auth": self.headers.get("Authorization")}
                with gateway.lock:
                    gateway.requests.append(request)
                    status, delay = gateway.script.pop(0) if gateway.script else (200, 0)
                    # A gateway takes the SMS (once per key) before it answers.
                    first = status == 200 and key not in gateway.delivered
                    if first:
                        gateway.delivered[key] = body
                if gateway.on_request is not None:
                    gateway.on_request(request)
                time.sleep(delay)
                if status == 200:
                    answer = {"id": f"gw-{key[:8]}", "duplicate": not first}
                else:
                    answer = {"error": "unavailable" if status >= 500 else "refused"}
                data = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client went away (timed out or was killed)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

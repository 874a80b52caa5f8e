"""A real webhook receiver on loopback for the tests: an http.server in a thread that verifies every
request's signature with ``standardwebhooks.Webhook(secret).verify`` and records what it got.

``answers`` is the status codes to answer in turn (the last repeats); ``hold`` (a threading.Event)
makes it keep each request open until the test sets it, so a test can kill a sender mid-request.
"""

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified_with: list[int] = field(default_factory=list)  # indexes of ``secrets`` whose verify passed

    @property
    def message_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def json(self) -> dict:
        return json.loads(self.body)


class Receiver:
    def __init__(self, secrets=(), answers=(200,)):
        self.secrets = list(secrets)
        self.answers = list(answers)
        self.received: list[Received] = []
        self.hold: threading.Event | None = None
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                item = Received(self.path, headers, body)
                for index, secret in enumerate(receiver.secrets):
                    try:
                        Webhook(secret).verify(body, headers)
                    except WebhookVerificationError:
                        continue
                    item.verified_with.append(index)
                receiver.received.append(item)
                receiver.arrived.set()
                if receiver.hold is not None:
                    receiver.hold.wait(30)
                status = receiver.answers.pop(0) if len(receiver.answers) > 1 else receiver.answers[0]
                payload = b'{"ok": true}' if status < 300 else b"receiver says no"
                try:
                    self.send_response(status)
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the sender is gone (killed)
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()

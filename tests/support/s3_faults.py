"""An HTTP proxy in front of moto's S3 server that injects the faults of a real object store:
500s, slowness, other bytes on GET. Tests point AWS_ENDPOINT_URL at it."""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass
class Faults:
    """What the proxy does now; tests flip these while a run goes on."""

    errors_left: int = 0  # answer this many requests with 500 InternalError
    delay_seconds: float = 0.0  # wait this long before answering each request
    corrupt_gets: bool = False  # flip a byte in every GET body
    requests: int = 0
    served_500: int = 0


class S3FaultProxy:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream_host, self.upstream_port = parts.hostname or "127.0.0.1", parts.port or 80
        self.faults = Faults()
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                try:
                    self._forward()
                except OSError:  # the client gave up (a timeout test) or moto stopped
                    self.close_connection = True

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with proxy._lock:
                    proxy.faults.requests += 1
                    fail = proxy.faults.errors_left > 0
                    if fail:
                        proxy.faults.errors_left -= 1
                        proxy.faults.served_500 += 1
                    delay = proxy.faults.delay_seconds
                    corrupt = proxy.faults.corrupt_gets and self.command == "GET"
                if delay:
                    time.sleep(delay)
                if fail:
                    payload = (
                        b'<?xml version="1.0"?><Error><Code>InternalError</Code>'
                        b"<Message>injected</Message></Error>"
                    )
                    self.send_response(500)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                if corrupt and response.status == 200 and data:
                    data = bytes([data[0] ^ 0x20]) + data[1:]
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> S3FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

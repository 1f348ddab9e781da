"""An HTTP proxy in front of moto's S3 server that injects the faults of a real object store:
500s, slowness, other bytes on GET or PUT. It can also do what AWS does and moto (5.2.5)
does not: refuse a PUT whose body does not hash to its x-amz-checksum-sha256 (400
BadDigest); or act as a server that ignores that header (no checksum in its answers).
Tests point AWS_ENDPOINT_URL at it."""

from __future__ import annotations

import base64
import hashlib
import http.client
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass
class Faults:
    """What the proxy does now; tests flip these while a run goes on."""

    errors_left: int = 0  # answer this many requests with 500 InternalError
    delay_seconds: float = 0.0  # wait this long before answering each request
    corrupt_gets: bool = False  # flip a byte in every GET body
    corrupt_puts: bool = False  # flip a byte in every PUT body, after the client checksummed it
    check_sha256: bool = False  # refuse a PUT whose body is not its x-amz-checksum-sha256 (AWS)
    strip_checksums: bool = False  # answer without x-amz-checksum-* (a server that ignores them)
    requests: int = 0
    served_500: int = 0
    seen: list[tuple[str, str]] = field(default_factory=list)  # (method, path) of each request
    put_checksums: list[str | None] = field(default_factory=list)  # x-amz-checksum-sha256


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
                if self.command == "PUT" and proxy.faults.corrupt_puts and body:
                    body = bytes([body[0] ^ 0x20]) + body[1:]
                claimed = self.headers.get("x-amz-checksum-sha256")
                with proxy._lock:
                    proxy.faults.requests += 1
                    proxy.faults.seen.append((self.command, self.path.split("?")[0]))
                    if self.command == "PUT":
                        proxy.faults.put_checksums.append(claimed)
                    refuse = (
                        proxy.faults.check_sha256
                        and claimed is not None
                        and claimed != base64.b64encode(hashlib.sha256(body).digest()).decode()
                    )
                    fail = proxy.faults.errors_left > 0
                    if fail:
                        proxy.faults.errors_left -= 1
                        proxy.faults.served_500 += 1
                    delay = proxy.faults.delay_seconds
                    corrupt = proxy.faults.corrupt_gets and self.command == "GET"
                if delay:
                    time.sleep(delay)
                if refuse:
                    self._answer(
                        400,
                        b'<?xml version="1.0"?><Error><Code>BadDigest</Code><Message>The '
                        b"SHA256 you specified did not match the calculated checksum."
                        b"</Message></Error>",
                    )
                    return
                if fail:
                    self._answer(
                        500,
                        b'<?xml version="1.0"?><Error><Code>InternalError</Code>'
                        b"<Message>injected</Message></Error>",
                    )
                    return
                conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                if corrupt and response.status == 200 and data:
                    data = bytes([data[0] ^ 0x20]) + data[1:]
                self.send_response(response.status)
                dropped = {"transfer-encoding", "connection", "content-length"}
                for key, value in response.getheaders():
                    if proxy.faults.strip_checksums and key.lower().startswith("x-amz-checksum-"):
                        continue
                    if key.lower() not in dropped:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            def _answer(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

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

"""The hints a failed mailbox gets, from the errors the real POP3 client raises against the
fake server with and without TLS (archive/app/run_view.py reads only the error text)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from archive.app.run_view import failure_hint
from archive.errors import ArchiveError
from archive.pop3.client import Pop3Client
from archive.pop3.fake.server import FakeMailbox, FakePop3Server
from archive.pop3.types import TlsMode
from archive.pop3.wire import Endpoint


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, as a small server's admin would make one."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not installed")
    directory = tmp_path_factory.mktemp("tls")
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[FakePop3Server]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    with FakePop3Server({"u": FakeMailbox("pw", [])}, ssl_context=context) as server:
        yield server


@pytest.fixture
def plain_server() -> Iterator[FakePop3Server]:
    with FakePop3Server({"u": FakeMailbox("pw", [])}) as server:
        yield server


def _error(
    server: FakePop3Server, tls: TlsMode, *, ca_file: Path | None = None, password: str = "pw"
) -> str:
    endpoint = Endpoint(
        server.host, server.port, tls=tls, ca_file=ca_file, timeout=2, label="mailbox 'u'"
    )
    with pytest.raises(ArchiveError) as caught:
        client = Pop3Client.connect(endpoint)
        try:
            client.login("u", password)
        finally:
            client.close()
    return str(caught.value)


def test_a_self_signed_certificate_points_at_ca_file(tls_server: FakePop3Server):
    error = _error(tls_server, "implicit")
    assert "self-signed" in error or "self signed" in error, error
    hint = failure_hint(error)
    assert hint is not None and "`ca_file`" in hint, (error, hint)


def test_tls_to_a_plaintext_port_points_at_a_plaintext_port(plain_server: FakePop3Server):
    error = _error(plain_server, "implicit")
    assert "WRONG_VERSION_NUMBER" in error, error
    hint = failure_hint(error)
    assert hint is not None and "plaintext port" in hint, (error, hint)


def test_plain_pop3_to_a_tls_port_waits_for_a_greeting(tls_server: FakePop3Server):
    error = _error(tls_server, "none")
    assert "waiting for greeting" in error, error
    hint = failure_hint(error)
    assert hint is not None and 'tls = "implicit"' in hint, (error, hint)


def test_a_wrong_password_points_at_the_password_source(
    tls_server: FakePop3Server, certificate: tuple[Path, Path]
):
    error = _error(tls_server, "implicit", ca_file=certificate[0], password="wrong")
    assert "login failed" in error, error
    hint = failure_hint(error)
    assert hint is not None and "password source" in hint, (error, hint)

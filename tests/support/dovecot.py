"""A private Dovecot POP3 server on loopback, for integration tests.

Everything lives under one directory: config, runtime sockets, state, log, the passwd-file
and the users' Maildirs. Nothing touches a system Dovecot (own `base_dir`, `state_dir` and
`instance_name`). Facts this relies on are in shared/reference/dovecot.md.

As root, Dovecot's login processes run as `dovenull`, its internal services as `dovecot`
and mail processes as `nobody:nogroup` (it refuses uid 0 for both), so every directory
above the root must be traversable by those users; pytest's tmp tree (mode 0700) is not,
which is why `running_dovecot` falls back to the system temp dir. As an ordinary user, all
of those are the current user.
"""

from __future__ import annotations

import grp
import itertools
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
_deliveries = itertools.count()


@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path  # the self-signed certificate itself, for clients to trust as a CA
    cert_file: Path
    key_file: Path


def make_self_signed_cert(
    directory: Path,
    *,
    hostnames: Iterable[str] = ("localhost",),
    ips: Iterable[str] = ("127.0.0.1",),
) -> TlsFiles:
    """A fresh EC key and self-signed server certificate with a subjectAltName.

    An end-entity certificate (CA:FALSE, serverAuth) that clients pin as their only CA;
    it also passes `openssl verify -x509_strict`. Call twice in two directories to get an
    "untrusted" certificate for negative tests.
    """
    directory.mkdir(parents=True, exist_ok=True)
    hostnames, ips = list(hostnames), list(ips)
    san = ",".join([f"DNS:{h}" for h in hostnames] + [f"IP:{ip}" for ip in ips])
    config = directory / "openssl.cnf"
    config.write_text(
        "[req]\nprompt = no\ndistinguished_name = dn\nx509_extensions = ext\n"
        f"[dn]\nCN = {(hostnames or ips)[0]}\n"
        f"[ext]\nsubjectAltName = {san}\n"
        "basicConstraints = critical,CA:FALSE\n"
        "keyUsage = critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage = serverAuth\nsubjectKeyIdentifier = hash\n"
    )
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-config", str(config), "-newkey", "ec",
         "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    key.chmod(0o600)
    return TlsFiles(ca_file=cert, cert_file=cert, key_file=key)


@dataclass(frozen=True)
class _Accounts:
    """Who Dovecot's processes run as, and who owns the Maildirs."""

    login_user: str
    internal_user: str
    internal_group: str
    mail_uid: int
    mail_gid: int
    first_valid_uid: int
    first_valid_gid: int

    @classmethod
    def current(cls) -> _Accounts:
        if os.geteuid() == 0:
            nobody, nogroup = pwd.getpwnam("nobody"), grp.getgrnam("nogroup")
            return cls("dovenull", "dovecot", "dovecot", nobody.pw_uid, nogroup.gr_gid, 0, 0)
        me, group = pwd.getpwuid(os.geteuid()), grp.getgrgid(os.getegid())
        uid, gid = me.pw_uid, group.gr_gid
        return cls(me.pw_name, me.pw_name, group.gr_name, uid, gid, uid, gid)


class Dovecot:
    """A private Dovecot instance on loopback, configured under `root` (temp dir).

    Works as root and as an ordinary user. Dovecot always advertises PIPELINING (there is
    no setting to turn it off), so there is no knob for it here. Ports, TLS files and the
    config exist once `start()` has run.
    """

    host = "127.0.0.1"

    def __init__(
        self, root: Path, *, max_userip_connections: int = 10, lock_session: bool = False
    ) -> None:
        self.root = root
        self.max_userip_connections = max_userip_connections
        self.lock_session = lock_session
        self.config_path = root / "dovecot.conf"
        self.log_path = root / "dovecot.log"
        self.passwd_dir = root / "passwd.d"
        self.home_root = root / "home"
        self._accounts = _Accounts.current()
        self._ports: tuple[int, int] | None = None
        self._tls: TlsFiles | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pop3_port(self) -> int:
        """Plain POP3, with STLS."""
        return self._started_ports()[0]

    @property
    def pop3s_port(self) -> int:
        """Implicit TLS (RFC 8314)."""
        return self._started_ports()[1]

    @property
    def tls(self) -> TlsFiles:
        if self._tls is None:
            raise RuntimeError(f"Dovecot under {self.root} has not been started")
        return self._tls

    def _started_ports(self) -> tuple[int, int]:
        if self._ports is None:
            raise RuntimeError(f"Dovecot under {self.root} has not been started")
        return self._ports

    def __enter__(self) -> Dovecot:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Write and check the config, start Dovecot, wait until both ports serve."""
        if self._process is not None:
            raise RuntimeError(f"Dovecot under {self.root} is already running")
        self._prepare_root()
        if self._tls is None:
            self._tls = make_self_signed_cert(self.root / "tls")
        # Ports come from binding port 0; another process may take one before Dovecot
        # binds it, so a bind failure gets fresh ports.
        for attempt in range(3):
            self._ports = _free_ports(2)
            self.config_path.write_text(self._config())
            self._check_config()
            try:
                self._launch()
                return
            except _PortTaken:
                if attempt == 2:
                    raise

    def stop(self) -> None:
        """`doveadm stop`, wait for the master to exit, kill it as a last resort."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        # doveadm polls until the master pid is gone, but our -F master stays a zombie
        # until we reap it: run doveadm alongside the wait, not before it.
        doveadm = subprocess.Popen(
            ["doveadm", "-c", str(self.config_path), "stop"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)
        finally:
            try:
                doveadm.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                doveadm.kill()
                doveadm.wait()

    def add_user(self, user: str, password: str, messages: Iterable[bytes] = ()) -> None:
        """Give `user` a passwd-file, create the Maildir and deliver `messages` in order.

        One passwd-file per user, because Dovecot re-reads a changed passwd-file at most
        once a second (it stats it only when the second has changed since the last
        lookup): a user appended to a shared file just after another login would be
        unknown for up to a second. A new file is read on the user's first login.
        """
        for value in (user, password):
            if not value or any(c in value for c in ":\r\n\0"):
                raise ValueError(f"user {user!r}: names and passwords need no ':', CR, LF, NUL")
        if "/" in user or user.startswith("."):
            raise ValueError(f"user {user!r}: not usable as a directory name")
        home = self.home_root / user
        try:
            home.mkdir(mode=0o700)
        except FileExistsError:
            raise ValueError(f"user {user!r} already exists under {self.root}") from None
        maildir = home / "Maildir"
        for path in (home, maildir, maildir / "cur", maildir / "new", maildir / "tmp"):
            path.mkdir(mode=0o700, exist_ok=True)
            self._own(path)
        # Rename into place: the auth process must never read half a file.
        staging = self.passwd_dir / f".{user}.new"
        staging.write_text(f"{user}:{{PLAIN}}{password}\n")
        staging.chmod(0o644)  # read by the auth process, which runs as `dovecot` under root
        os.replace(staging, self.passwd_dir / user)
        for message in messages:
            self.deliver(user, message)

    def deliver(self, user: str, message: bytes) -> None:
        """Write to Maildir/tmp/<unique>, then rename into Maildir/new/.

        Dovecot orders new mail by the leading timestamp of the file name, then by the rest
        of the name, so the zero-padded sequence number keeps delivery order.
        """
        maildir = self.home_root / user / "Maildir"
        if not maildir.is_dir():
            raise ValueError(f"user {user!r} has no Maildir under {self.home_root}")
        name = f"{int(time.time())}.Q{next(_deliveries):09d}P{os.getpid()}.mailarchive-test"
        staging = maildir / "tmp" / name
        with open(os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as file:
            file.write(message)
            file.flush()
            os.fsync(file.fileno())
        self._own(staging)
        os.rename(staging, maildir / "new" / name)

    def maildir(self, user: str) -> Path:
        """The user's Maildir (made by `add_user`), for writing many messages at once."""
        return self.home_root / user / "Maildir"

    def own(self, path: Path) -> None:
        """Give `path` to the user Dovecot's mail processes run as (as root; else a no-op)."""
        self._own(path)

    def served_bytes(self, message: bytes) -> bytes:
        """The bytes an RFC 1939 client receives for `message` after dot-unstuffing, up to
        and including the CRLF before the terminating ".", when delivered via `deliver()`.

        What Dovecot 2.3 does while sending RETR (checked against the real server by
        tests/test_dovecot_fixture.py):
        - every LF not preceded by CR becomes CRLF ("\\n" -> "\\r\\n", "\\r\\n" stays);
        - a bare CR is sent as is (also "\\r\\r\\n" stays "\\r\\r\\n");
        - if the message does not end with LF, CRLF is appended (also after a trailing
          bare CR, and for an empty message);
        - NUL and 8-bit bytes pass through; "." after LF is dot-stuffed, which the client
          undoes, so it does not change the result.

        Not predictable: a message whose first byte is "." - Dovecot does not dot-stuff the
        first line, so a client drops that dot, and a first line of just "." ends the
        response early and desynchronises the session. Refused with ValueError.
        """
        if message.startswith(b"."):
            raise ValueError("Dovecot does not dot-stuff a message's first line")
        served = bytearray()
        previous = 0
        for byte in message:
            if byte == 0x0A and previous != 0x0D:
                served.append(0x0D)
            served.append(byte)
            previous = byte
        if not served.endswith(b"\n"):
            served += b"\r\n"
        return bytes(served)

    def message_count(self, user: str) -> int:
        """Messages now in the user's Maildir (new/ and cur/), to check deletions."""
        maildir = self.home_root / user / "Maildir"
        return sum(
            1
            for folder in ("new", "cur")
            for entry in os.scandir(maildir / folder)
            if entry.is_file() and not entry.name.startswith(".")
        )

    def wait_sessions(self, user: str, count: int, timeout: float = 15.0) -> None:
        """Wait until Dovecot's anvil counts exactly `count` sessions of `user`.

        Dovecot registers a login with anvil asynchronously, and forgets a closed session a
        moment after it ended; its per-user+IP cap acts on anvil's count, not on ours.
        """
        deadline = time.monotonic() + timeout
        while True:
            listing = subprocess.run(
                ["doveadm", "-c", str(self.config_path), "who", "-1"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            seen = sum(1 for line in listing.splitlines()[1:] if line.split()[:1] == [user])
            if seen == count:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"dovecot counts {seen} sessions of {user}, not {count}")
            time.sleep(0.05)

    def _prepare_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            self.root.chmod(0o755)
            if (closed := _closed_to_others(self.root)) is not None:
                raise RuntimeError(
                    f"{closed} (mode {stat.filemode(closed.stat().st_mode)}) is not traversable "
                    "by Dovecot's service users (dovenull, dovecot, nobody); put the Dovecot "
                    "root elsewhere"
                )
        self.home_root.mkdir(mode=0o755, exist_ok=True)
        self.passwd_dir.mkdir(mode=0o755, exist_ok=True)

    def _own(self, path: Path) -> None:
        if os.geteuid() == 0:
            os.chown(path, self._accounts.mail_uid, self._accounts.mail_gid)

    def _config(self) -> str:
        a, tls = self._accounts, self.tls
        pop3_port, pop3s_port = self._started_ports()
        return f"""\
base_dir = {self.root}/run
state_dir = {self.root}/state
instance_name = mailarchive-test-{pop3_port}
log_path = {self.log_path}
auth_verbose = yes
protocols = pop3
listen = {self.host}
shutdown_clients = yes

default_login_user = {a.login_user}
default_internal_user = {a.internal_user}
default_internal_group = {a.internal_group}
first_valid_uid = {a.first_valid_uid}
first_valid_gid = {a.first_valid_gid}

ssl = yes
ssl_cert = <{tls.cert_file}
ssl_key = <{tls.key_file}
# Loopback counts as secure anyway; this keeps plaintext USER/PASS explicit.
disable_plaintext_auth = no
auth_mechanisms = plain login
# Fast negative tests: no delay after a failed login, no per-IP penalty from anvil.
auth_failure_delay = 0

passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.passwd_dir}/%u
}}
userdb {{
  driver = static
  args = uid={a.mail_uid} gid={a.mail_gid} home={self.home_root}/%u
}}
mail_location = maildir:~/Maildir

pop3_uidl_format = %08Xu%08Xv
pop3_lock_session = {"yes" if self.lock_session else "no"}
protocol pop3 {{
  mail_max_userip_connections = {self.max_userip_connections}
}}

service pop3-login {{
  chroot =
  inet_listener pop3 {{
    address = {self.host}
    port = {pop3_port}
  }}
  inet_listener pop3s {{
    address = {self.host}
    port = {pop3s_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""

    def _check_config(self) -> None:
        result = subprocess.run(
            ["doveconf", "-c", str(self.config_path), "-n"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"doveconf rejected {self.config_path}:\n{result.stderr.strip()}")

    def _launch(self) -> None:
        # -F keeps the master in the foreground as our child: an early exit shows at once,
        # and stop() can wait on it. It still writes base_dir/master.pid for doveadm.
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                ["dovecot", "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                if "Address already in use" in self._log_tail():
                    raise _PortTaken
                raise RuntimeError(f"Dovecot exited during start:\n{self._log_tail()}")
            if self._serving():
                return
            time.sleep(0.05)
        tail = self._log_tail()
        self.stop()
        raise RuntimeError(
            f"Dovecot did not serve {self.host}:{self.pop3_port} and :{self.pop3s_port} "
            f"within {START_TIMEOUT:.0f} s:\n{tail}"
        )

    def _serving(self) -> bool:
        """Both listeners accept, and the plain one greets: pop3-login only sends its
        greeting once the auth process is up, so logins will work from here on."""
        try:
            with socket.create_connection((self.host, self.pop3s_port), timeout=1):
                pass
            with socket.create_connection((self.host, self.pop3_port), timeout=2) as sock:
                return sock.makefile("rb").readline().startswith(b"+OK")
        except OSError:
            return False

    def _log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return f"(no log at {self.log_path})"
        return "\n".join(text.splitlines()[-lines:])


class _PortTaken(Exception):
    pass


def _free_ports(count: int) -> tuple[int, int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        first, second = (sock.getsockname()[1] for sock in sockets)
        return first, second
    finally:
        for sock in sockets:
            sock.close()


def _closed_to_others(path: Path) -> Path | None:
    """The first directory from `path` up that other users may not search, if any."""
    path = path.resolve()
    return next((d for d in [path, *path.parents] if not d.stat().st_mode & stat.S_IXOTH), None)


@contextmanager
def running_dovecot(scratch: Path, **options: Any) -> Iterator[Dovecot]:
    """A started Dovecot in a new directory; stopped on exit.

    The directory is made under `scratch` when Dovecot's service users can reach it (always
    as an ordinary user), else - as root under pytest's 0700 tmp tree - in the system temp
    dir, and then removed on exit. pytest resets its tree to 0700 at every session start,
    so loosening it would break a Dovecot of a concurrent session.
    """
    scratch = scratch.resolve()
    reachable = os.geteuid() != 0 or _closed_to_others(scratch) is None
    root = Path(tempfile.mkdtemp(prefix="dovecot-", dir=scratch if reachable else None))
    server = Dovecot(root, **options)
    try:
        with server:
            yield server
    finally:
        if not reachable:
            shutil.rmtree(root, ignore_errors=True)

"""Crash safety: SIGKILL the archiving process tree at random moments, then rerun until a
run finishes clean. Nothing may leave the server without a verified archived copy.

The CI size is 2 mailboxes x 100 messages and 6 kills. The long version, on demand:

    MAILARCHIVE_KILL_LOOP_MESSAGES=500 MAILARCHIVE_KILL_LOOP_MAILBOXES=4 \
    MAILARCHIVE_KILL_LOOP_KILLS=25 uv run pytest -n 0 tests/integration/test_kill_loop.py

(2,000 messages, 25 kills; docs/benchmarks.md records the last long run).
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from archive.index.database import make_engine
from archive.pipeline.verify import verify
from archive.store import LocalStore, raw_key
from tests.support.dovecot import Dovecot
from tests.support.fixtures_dovecot import NewUser

pytestmark = pytest.mark.dovecot

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = int(os.environ.get("MAILARCHIVE_KILL_LOOP_MESSAGES", "100"))
MAILBOXES = int(os.environ.get("MAILARCHIVE_KILL_LOOP_MAILBOXES", "2"))
KILLS = int(os.environ.get("MAILARCHIVE_KILL_LOOP_KILLS", "6"))


def _message(box: int, n: int, rng: random.Random) -> bytes:
    # Sizes from 1 kB to ~600 kB, so kills land mid-RETR and mid-upload too.
    body_lines = rng.choice([10, 40, 200, 2000, 8000])
    body = "".join(
        f"line {i} of message {n} in box {box}: {rng.random()}\r\n" for i in range(body_lines)
    )
    return (
        f"From: sender{n}@example.org\r\nTo: box{box}@example.com\r\n"
        f"Subject: kill loop {box}/{n}\r\nMessage-ID: <k{box}-{n}@example.org>\r\n"
        f"Date: Tue, 03 Mar 2026 10:00:00 +0000\r\n\r\n{body}"
    ).encode()


def _on_server(dovecot: Dovecot, user: str) -> set[bytes]:
    maildir = dovecot.home_root / user / "Maildir"
    return {
        path.read_bytes()
        for folder in ("new", "cur")
        for path in (maildir / folder).iterdir()
        if path.is_file() and not path.name.startswith(".")
    }


def _archived(engine: Engine, mailbox: str) -> list[str]:
    with engine.connect() as conn:
        return [
            row[0]
            for row in conn.execute(
                text("SELECT sha256 FROM archive.messages WHERE mailbox = :m"), {"m": mailbox}
            )
        ]


def _start(config: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.archive_once", str(config)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # its own process group: the kill takes the whole tree
    )  # fmt: skip


def test_sigkill_loop_loses_nothing(
    dovecot: Dovecot, dovecot_user: NewUser, fresh_db_url: str, tmp_path: Path
):
    rng = random.Random(os.environ.get("MAILARCHIVE_KILL_LOOP_SEED", "7"))
    boxes: dict[str, tuple[str, dict[str, bytes]]] = {}
    config: list[str] = []
    for b in range(MAILBOXES):
        mails = [_message(b, n, rng) for n in range(MESSAGES)]
        user, password = dovecot_user(mails)
        served = {m: dovecot.served_bytes(m) for m in mails}
        boxes[user] = (password, served)
        config.append(
            f'[[mailbox]]\nname = "{user}"\nhost = "{dovecot.host}"\nport = {dovecot.pop3_port}\n'
            f'tls = "none"\nusername = "{user}"\npassword_env = "KILL_PW_{b}"\n'
            "delete_after_archive = true\n"
        )
    mailbox_file = tmp_path / "mailboxes.toml"
    mailbox_file.write_text("\n".join(config))
    store_root = tmp_path / "objects"
    env = {
        **os.environ,
        "MAILARCHIVE_DATABASE_URL": fresh_db_url,
        "MAILARCHIVE_STORE_URL": store_root.as_uri(),
        **{f"KILL_PW_{b}": boxes[user][0] for b, user in enumerate(boxes)},
    }
    engine = make_engine(fresh_db_url, pool_size=1)
    store = LocalStore(store_root)

    def check_nothing_lost() -> None:
        for user, (_, served) in boxes.items():
            gone = set(served) - _on_server(dovecot, user)
            archived = set(_archived(engine, user))
            for original in gone:
                sha = hashlib.sha256(served[original]).hexdigest()
                assert sha in archived, f"{user}: a message left the server unarchived"
                assert store.get(raw_key(sha)) == served[original]

    kills = runs = 0
    process: subprocess.Popen[str] | None = None
    try:
        while True:
            runs += 1
            assert runs <= KILLS + 10, "the archive never finished a clean run"
            process = _start(mailbox_file, env)
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.strip() == "ready", line + process.stdout.read()
            if kills < KILLS:
                try:
                    process.wait(timeout=rng.uniform(0.05, 2.0))
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
                    kills += 1
                    check_nothing_lost()
                    continue
            output = process.stdout.read()
            code = process.wait()
            check_nothing_lost()
            if code == 0 and all(not _on_server(dovecot, u) for u in boxes):
                break
            if kills >= KILLS:
                assert code == 0, output[-3000:]
    finally:
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    assert kills >= KILLS
    for user, (_, served) in boxes.items():
        archived = _archived(engine, user)
        # Every message archived, byte for byte, once per mailbox.
        assert sorted(archived) == sorted(hashlib.sha256(s).hexdigest() for s in served.values())
        assert not _on_server(dovecot, user)
    report = verify(engine, store)
    assert report.ok and report.checked == MAILBOXES * MESSAGES, report.to_dict()
    engine.dispose()

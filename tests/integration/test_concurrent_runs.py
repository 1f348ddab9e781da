"""Two runs of the same mailboxes from two processes at once: each message archived once;
the run that finds a mailbox busy skips it and says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from archive.index.database import make_engine
from tests.support.dovecot import Dovecot
from tests.support.fixtures_dovecot import NewUser
from tests.support.mail import make_message

pytestmark = pytest.mark.dovecot
ROOT = Path(__file__).resolve().parents[2]


def test_two_processes_archive_each_message_once(
    dovecot: Dovecot, dovecot_user: NewUser, fresh_db_url: str, tmp_path: Path
):
    users = [
        dovecot_user([make_message(f"m{b}-{n}", "x" * 20_000) for n in range(60)]) for b in range(3)
    ]
    mailbox_file = tmp_path / "mailboxes.toml"
    mailbox_file.write_text(
        "\n".join(
            f'[[mailbox]]\nname = "{user}"\nhost = "{dovecot.host}"\nport = {dovecot.pop3_port}\n'
            f'tls = "none"\nusername = "{user}"\npassword_env = "TWO_PW_{i}"\n'
            for i, (user, _) in enumerate(users)
        )
    )
    env = {
        **os.environ,
        "MAILARCHIVE_DATABASE_URL": fresh_db_url,
        "MAILARCHIVE_STORE_URL": (tmp_path / "objects").as_uri(),
        **{f"TWO_PW_{i}": password for i, (_, password) in enumerate(users)},
    }
    argv = [sys.executable, "-m", "tests.support.archive_once", str(mailbox_file)]
    first, second = (
        subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    )
    outputs = [p.communicate()[0] for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outputs
    results = [json.loads(line) for out in outputs for line in out.splitlines()[1:]]
    assert len(results) == 6
    skipped = [r for r in results if r["note"] and "another session" in r["note"]]
    # Every mailbox archived by one run; whichever found it busy says so, archiving nothing.
    assert all(r["archived"] == 0 for r in skipped)
    for user, _ in users:
        runs = sorted((r for r in results if r["name"] == user), key=lambda r: r["archived"])
        # The other run either found the mailbox busy (a note) or came after (nothing new).
        assert runs[0]["archived"] == 0 and runs[1]["archived"] == 60
        assert runs[0] in skipped or runs[0]["new"] == 0
    assert sum(r["archived"] for r in results) == 180
    engine = make_engine(fresh_db_url, pool_size=1)
    with engine.connect() as conn:
        per_box = dict(
            conn.execute(
                text("SELECT mailbox, count(*) FROM archive.messages GROUP BY mailbox")
            ).all()
        )
        deliveries = conn.execute(text("SELECT count(*) FROM mailarchive.delivery")).scalar_one()
    engine.dispose()
    assert per_box == {user: 60 for user, _ in users} and deliveries == 180

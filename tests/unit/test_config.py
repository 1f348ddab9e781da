from __future__ import annotations

from pathlib import Path

import pytest

from archive.config import (
    MailboxConfig,
    MailboxFile,
    Settings,
    check_password_sources,
    load_mailbox_file,
    load_settings,
    resolve_password,
    validate_cron,
)
from archive.config.mailboxes import first_duplicate
from archive.errors import ConfigError

GOOD = """
[[mailbox]]
name = "sales"
host = "pop.example.com"
username = "sales@example.com"
password_env = "SALES_PW"

[[mailbox]]
name = "legal"
host = "pop.example.com"
port = 110
tls = "starttls"
username = "legal"
password_secret = "legal-pop3"
delete_after_archive = true
"""


def test_good_file(tmp_path: Path):
    path = tmp_path / "m.toml"
    path.write_text(GOOD)
    boxes = load_mailbox_file(path)
    sales, legal = boxes.mailbox
    assert (sales.effective_port, sales.tls, sales.delete_after_archive) == (995, "implicit", False)
    assert (legal.effective_port, legal.tls, legal.delete_after_archive) == (110, "starttls", True)
    assert boxes.select(["legal"]) == (legal,)
    with pytest.raises(ConfigError, match="nosuch"):
        boxes.select(["nosuch"])


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            GOOD + "\n[[mailbox]]\nname='sales'\nhost='h'\nusername='u'\npassword_env='X'\n",
            "duplicate mailbox name 'sales'",
        ),
        (
            "[[mailbox]]\nname='a'\nhost='h'\nusername='u'\npassword_env='X'\npassword='plain'\n",
            "password",
        ),
        (
            "[[mailbox]]\nname='a'\nhost='h'\nusername='u'\n",
            "exactly one of password_env, password_secret or password_command",
        ),
        (
            "[[mailbox]]\nname='a'\nhost='h'\nusername='u'\npassword_env='X'\ntls='sometimes'\n",
            "tls",
        ),
        ("[[mailbox]\n", "invalid TOML"),
        (
            "[[mailbox]]\nname='b'\nhost='h'\nusername='u'\npassword_env='X'\nbogus=1\n",
            "[[mailbox]] #1 (name 'b'): bogus: unknown key",
        ),
    ],
)
def test_bad_files_are_rejected_with_reason(tmp_path: Path, text: str, reason: str):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as failure:
        load_mailbox_file(path)
    assert reason in str(failure.value) and str(path) in str(failure.value)


def test_password_resolution_never_leaks(monkeypatch):
    box = MailboxConfig(name="x", host="h", username="u", password_env="X_PW")
    with pytest.raises(ConfigError, match="X_PW is not set"):
        resolve_password(box)
    monkeypatch.setenv("X_PW", "hunter2\r\nDELE 1")
    with pytest.raises(ConfigError) as failure:
        resolve_password(box)
    assert "hunter2" not in str(failure.value)
    monkeypatch.setenv("X_PW", "hunter2")
    assert resolve_password(box) == "hunter2"
    secret_box = MailboxConfig(name="y", host="h", username="u", password_secret="s")
    assert resolve_password(secret_box, lambda name: f"value-of-{name}") == "value-of-s"


def _command_box(tmp_path: Path, script: str) -> MailboxConfig:
    helper = tmp_path / "token-helper"
    helper.write_text(f"#!/bin/sh\n{script}\n")
    helper.chmod(0o755)
    return MailboxConfig(
        name="oauth", host="h", username="u", auth="xoauth2", password_command=(str(helper), "--x")
    )


def test_password_command_prints_the_token(tmp_path: Path):
    box = _command_box(tmp_path, 'test "$1" = --x && echo "ya29.token-value"')
    assert resolve_password(box) == "ya29.token-value"


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        ("echo ya29.leaked-token; exit 3", "exited with 3"),
        ("printf ''", "printed nothing"),
        ("printf 'two\\nlines\\n'", "CR or LF"),
    ],
)
def test_password_command_failures_never_show_output(tmp_path: Path, script: str, reason: str):
    box = _command_box(tmp_path, script)
    with pytest.raises(ConfigError, match=reason) as failure:
        resolve_password(box)
    assert "leaked" not in str(failure.value) and "oauth" in str(failure.value)


def test_password_command_not_found():
    box = MailboxConfig(name="n", host="h", username="u", password_command=("/nonexistent/x",))
    with pytest.raises(ConfigError, match="not found"):
        resolve_password(box)


def test_delete_policies_are_exclusive():
    with pytest.raises(ValueError, match="not both"):
        MailboxConfig(
            name="d",
            host="h",
            username="u",
            password_env="X",
            delete_after_archive=True,
            delete_older_than_days=30,
        )
    assert (
        MailboxConfig(
            name="d", host="h", username="u", password_env="X", delete_older_than_days=30
        ).delete_policy
        == "older_than"
    )


def test_hosts_must_agree_on_max_connections(tmp_path: Path):
    path = tmp_path / "m.toml"
    path.write_text(
        "[[mailbox]]\nname='a'\nhost='pop.x'\nusername='u'\npassword_env='X'\nmax_connections=2\n"
        "[[mailbox]]\nname='b'\nhost='POP.x'\nusername='u'\npassword_env='X'\nmax_connections=5\n"
    )
    with pytest.raises(ConfigError, match="max_connections 5 differs from 2"):
        load_mailbox_file(path)


SCHEDULED = 'schedule = "*/15 * * * *"\ntimezone = "Europe/Paris"\n' + GOOD


def test_schedule_and_timezone_are_top_level_keys(tmp_path: Path):
    path = tmp_path / "m.toml"
    path.write_text(SCHEDULED)
    archive_file = load_mailbox_file(path)
    assert (archive_file.schedule, archive_file.timezone) == ("*/15 * * * *", "Europe/Paris")
    assert [box.name for box in archive_file.mailbox] == ["sales", "legal"]
    path.write_text(GOOD)
    assert load_mailbox_file(path).schedule is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            'schedule = "*/15 * * *"\n' + GOOD,
            "line 1: schedule: cron '*/15 * * *': expected 5 fields",
        ),
        (
            '\nschedule = "0 25 * * *"\n' + GOOD,
            "line 2: schedule: cron '0 25 * * *': bad hour '25'",
        ),
        ('schedule = "H * * * *"\n' + GOOD, "bad minute 'H'"),
        (
            'timezone = "Mars/Olympus"\n' + GOOD,
            "line 1: timezone: unknown time zone 'Mars/Olympus'",
        ),
        ('schedul = "@daily"\n' + GOOD, "line 1: schedul: unknown key"),
        (
            GOOD.replace('name = "legal"', 'name = "sales"'),
            "line 8: [[mailbox]] #2: duplicate mailbox name 'sales'",
        ),
        (GOOD.replace("port = 110", "port = 0"), "line 11: [[mailbox]] #2 (name 'legal'): port: "),
    ],
)
def test_bad_top_level_keys_name_line_and_reason(tmp_path: Path, text: str, reason: str):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as failure:
        load_mailbox_file(path)
    assert reason in str(failure.value)


@pytest.mark.parametrize(
    "cron",
    [
        "*/15 * * * *",
        "0 3 * * mon-fri",
        "0 22-2 * * *",
        "5,35 8-18/2 1 jan,jul *",
        "@hourly",
        "0 0 1-31 12 0,7",
    ],
)
def test_valid_crons(cron: str):
    validate_cron(cron)


@pytest.mark.parametrize(
    "cron",
    [
        "",
        "* * * *",
        "60 * * * *",
        "* * 0 * *",
        "* * * 13 *",
        "*/0 * * * *",
        "H * * * *",
        "R * * * *",
        "* * * * 8",
        "* * * * funday",
        "@fortnightly",
        "1.5 * * * *",
    ],
)
def test_invalid_crons(cron: str):
    with pytest.raises(ValueError, match="cron"):
        validate_cron(cron)


def test_missing_password_env_is_found_before_a_run(tmp_path: Path):
    path = tmp_path / "m.toml"
    path.write_text(GOOD)
    boxes = load_mailbox_file(path).mailbox
    with pytest.raises(ConfigError, match="'sales': environment variable SALES_PW is not set"):
        check_password_sources(boxes, {})
    # Only presence is checked; password_secret boxes are the flow's to check.
    check_password_sources(boxes, {"SALES_PW": ""})


def test_bad_setting_is_a_config_error_naming_the_variable_not_the_value(monkeypatch):
    monkeypatch.setenv("MAILARCHIVE_DATABASE_URL", "postgresql://u:Hunter2-secret@db/archive")
    monkeypatch.setenv("MAILARCHIVE_TIMEOUT_SECONDS", "-5")
    monkeypatch.setenv("MAILARCHIVE_RETRIES", "many")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "MAILARCHIVE_TIMEOUT_SECONDS: Input should be greater than 0" in message
    assert "MAILARCHIVE_RETRIES:" in message
    assert "Hunter2" not in message and "many" not in message


def test_defaults_are_defined_once():
    from archive import defaults
    from archive.defaults import PARSE_MAX_BYTES as DEFAULT_MAX_BYTES
    from archive.pop3.wire import Endpoint

    settings = Settings()
    endpoint = Endpoint(host="h", port=110)
    assert settings.timeout_seconds == endpoint.timeout == defaults.TIMEOUT_SECONDS == 60.0
    assert settings.max_message_bytes == endpoint.max_response_bytes == 1 << 30
    assert settings.parse_max_bytes == DEFAULT_MAX_BYTES == 64 << 20
    assert settings.host_slot_wait_seconds == defaults.HOST_SLOT_WAIT_SECONDS == 3600.0


def test_duplicate_names_are_refused_by_the_model_too():
    assert first_duplicate(["a", None, "b", 3, "a", "b"]) == 4
    assert first_duplicate(["a", "b"]) is None
    table = {"host": "h", "username": "u", "password_env": "X"}
    with pytest.raises(ValueError, match="duplicate mailbox name 'a'"):
        MailboxFile.model_validate({"mailbox": [{"name": "a", **table}, {"name": "a", **table}]})

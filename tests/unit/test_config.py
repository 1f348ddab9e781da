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
    with pytest.raises(ConfigError) as caught:
        boxes.select(["slaes", "nosuch"])
    assert str(caught.value) == (
        f"{path}: unknown mailbox name(s): slaes (did you mean 'sales'?), nosuch"
    )


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


def _problems(tmp_path: Path, text: str) -> tuple[Path, list[str]]:
    path = tmp_path / "mailboxes.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as failure:
        load_mailbox_file(path)
    return path, str(failure.value).splitlines()


def test_every_problem_is_reported_once_per_line_sorted_by_line(tmp_path: Path):
    text = (
        'timezone = "Mars/Olympus"\n'  # 1
        "\n"
        "[[mailbox]]\n"  # 3
        'name = "sales"\n'
        'host = "pop.example.com"\n'
        'username = "sales"\n'
        'password_env = "SALES_PW"\n'
        "port = 0\n"  # 8
        "\n"
        "[[mailbox]]\n"  # 10
        'name = "sales"\n'
        'host = "pop.example.com"\n'
        'username = "legal"\n'
        'password_env = "LEGAL_PW"\n'
        'tls = "sometimes"\n'  # 15
    )
    path, lines = _problems(tmp_path, text)
    # The duplicate name is found before validation, yet takes its place by line.
    assert [line.split(": ", 2)[1] for line in lines] == ["line 1", "line 8", "line 10", "line 15"]
    assert all(line.startswith(f"{path}: line ") for line in lines)
    assert "timezone" in lines[0] and "port" in lines[1] and "tls" in lines[3]
    assert "duplicate mailbox name 'sales'" in lines[2]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[[mailbox]]\nname='a'\nhost='h'\nusername='u'\npasword_env='X'\n",
            "line 5: [[mailbox]] #1 (name 'a'): pasword_env: unknown key "
            "(did you mean 'password_env'?)",
        ),
        ('schedul = "@daily"\n' + GOOD, "line 1: schedul: unknown key (did you mean 'schedule'?)"),
        (GOOD + "\n[[mailboxes]]\nname='x'\n", "line 17: mailboxes: unknown key (did you mean"),
    ],
)
def test_an_unknown_key_gets_a_suggestion(tmp_path: Path, text: str, expected: str):
    _, lines = _problems(tmp_path, text)
    assert any(expected in line for line in lines), lines


def test_a_key_nothing_resembles_gets_no_suggestion(tmp_path: Path):
    _, lines = _problems(tmp_path, GOOD + "zzzz = 1\n")
    assert lines[-1].endswith("zzzz: unknown key")


def test_a_password_in_the_file_is_explained_not_suggested(tmp_path: Path):
    _, lines = _problems(
        tmp_path, "[[mailbox]]\nname='a'\nhost='h'\nusername='u'\npassword='hunter2'\n"
    )
    assert "line 5:" in lines[0] and "passwords never go in this file" in lines[0]
    assert "hunter2" not in "\n".join(lines)


def test_single_brackets_are_explained(tmp_path: Path):
    path, lines = _problems(
        tmp_path, "# archive\n[mailbox]\nname='a'\nhost='h'\nusername='u'\npassword_env='X'\n"
    )
    assert lines == [
        f"{path}: line 2: [mailbox] is one table; write [[mailbox]] (double brackets) before "
        "each mailbox: the file holds a list of them"
    ]


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_an_empty_file_says_it_is_empty(tmp_path: Path, text: str):
    path, lines = _problems(tmp_path, text)
    assert lines[0].startswith(f"{path}: the file is empty: add a [[mailbox]] table")


def test_a_file_without_mailboxes_says_so(tmp_path: Path):
    _, lines = _problems(tmp_path, 'schedule = "@daily"\n')
    assert lines[0].endswith(
        "no [[mailbox]] table: add a [[mailbox]] table per mailbox "
        "(every key is in docs/mailboxes.md)"
    )


def test_a_missing_ca_file_is_rejected_naming_the_path(tmp_path: Path):
    missing = tmp_path / "no-such-ca.pem"
    table = "[[mailbox]]\nname='a'\nhost='h'\nusername='u'\npassword_env='X'\n"
    path, lines = _problems(tmp_path, table + f"ca_file = '{missing}'\n")
    assert lines == [
        f"{path}: line 6: [[mailbox]] #1 (name 'a'): ca_file: {missing} does not exist"
    ]
    _, lines = _problems(tmp_path, table + f"ca_file = '{tmp_path}'\n")
    assert lines[0].endswith(f"ca_file: {tmp_path} is not a file")
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    path.write_text(table + f"ca_file = '{ca}'\n")
    assert load_mailbox_file(path).mailbox[0].ca_file == ca


def test_an_unset_password_env_names_its_file_and_line(tmp_path: Path):
    path = tmp_path / "m.toml"
    path.write_text(GOOD)
    archive_file = load_mailbox_file(path)
    with pytest.raises(ConfigError) as failure:
        check_password_sources(archive_file.mailbox, {}, placed_in=archive_file)
    assert str(failure.value) == (
        f"{path}: line 6: mailbox 'sales': environment variable SALES_PW is not set"
    )


def test_password_command_errors_show_the_command_as_written(tmp_path: Path):
    box = _command_box(tmp_path, "echo ya29.leaked-token; exit 3")
    with pytest.raises(ConfigError) as failure:
        resolve_password(box)
    assert str(failure.value) == (
        f'mailbox \'oauth\': password_command ["{tmp_path}/token-helper", "--x"] exited with 3'
    )
    missing = MailboxConfig(
        name="n", host="h", username="u", password_command=("no-such-helper", "fetch")
    )
    with pytest.raises(ConfigError) as failure:
        resolve_password(missing)
    assert str(failure.value) == (
        'mailbox \'n\': password_command ["no-such-helper", "fetch"]: '
        "program 'no-such-helper' not found"
    )


def test_parse_limit_defaults_match_the_parser():
    from archive.mime.model import ParseLimits

    assert Settings().parse_limits() == ParseLimits()


def test_the_schema_head_constant_is_alembics_head():
    from alembic.script import ScriptDirectory

    import migrations

    script = ScriptDirectory.from_config(migrations.alembic_config("postgresql://u@h/db"))
    assert script.get_heads() == [migrations.HEAD]


def test_a_duplicate_name_in_an_otherwise_valid_file_is_reported_once(tmp_path: Path):
    path, lines = _problems(tmp_path, GOOD.replace('name = "legal"', 'name = "sales"'))
    assert lines == [f"{path}: line 8: [[mailbox]] #2: duplicate mailbox name 'sales'"]


def test_schedule_written_below_a_mailbox_says_to_move_it_to_the_top(tmp_path: Path):
    # TOML puts every key after a [[mailbox]] header into that mailbox: appending the
    # README's schedule lines to the end of the file lands them in the last one.
    path, lines = _problems(tmp_path, GOOD + 'schedule = "*/15 * * * *"\n')
    assert lines == [
        f"{path}: line 16: [[mailbox]] #2 (name 'legal'): schedule: unknown key: it belongs "
        "to the whole file; move it above the first [[mailbox]] header"
    ]

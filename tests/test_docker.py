"""docker/ cannot run here (no Docker engine), so check it statically against the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from typer.main import get_command

from archive.cli import app

DOCKER = Path(__file__).resolve().parents[1] / "docker"


def _compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def test_services_and_commands_match_the_cli():
    compose = _compose()
    services = compose["services"]
    assert {"postgres", "minio", "prefect-server", "migrate", "archive"} <= set(services)
    commands = set(get_command(app).commands)  # type: ignore[attr-defined]
    for name in ("migrate", "archive"):
        assert services[name]["command"][0] in commands, name
    assert (
        services["archive"]["depends_on"]["migrate"]["condition"]
        == "service_completed_successfully"
    )
    for name in ("postgres", "minio", "prefect-server"):
        assert "healthcheck" in services[name] and services[name]["restart"] == "unless-stopped"


def test_no_secret_values_in_compose():
    text = (DOCKER / "compose.yaml").read_text()
    for match in re.finditer(r"^\s*([A-Z_]*(?:PASSWORD|SECRET|ACCESS_KEY)[A-Z_]*):[ \t]*(\S+)", text, re.M):
        assert match.group(2).startswith("${"), match.group(0)
    for url in re.findall(r"://[^:/\s]+:([^@\s]+)@", text):
        assert url.startswith("${"), url
    env_example = (DOCKER / ".env.example").read_text()
    for line in env_example.splitlines():
        if "PASSWORD" in line and not line.startswith("#"):
            assert line.endswith("="), line


def test_environment_names_are_settings_the_archive_reads():
    from archive.config import Settings

    compose = _compose()
    env = compose["services"]["archive"]["environment"]
    known = {f"MAILARCHIVE_{name.upper()}" for name in Settings.model_fields}
    for key in env:
        if key.startswith("MAILARCHIVE_"):
            assert key in known, key


def test_dockerfile_is_multi_stage_with_uv_and_locked():
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", dockerfile, re.M)) >= 2
    assert "uv sync --locked" in dockerfile
    assert re.search(r"^USER (?!root)", dockerfile, re.M)
    assert 'ENTRYPOINT ["mailarchive"]' in dockerfile

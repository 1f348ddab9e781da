"""docker/ cannot run here (no Docker engine), so check it statically against the CLI,
the settings and prefect.yaml, so that it cannot silently rot."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml
from typer.main import get_command

from archive.app.cli import app

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
LONG_RUNNING = {"postgres", "minio", "prefect-server", "worker", "serve"}
ONE_SHOT = {"create-bucket", "migrate", "deploy", "archive"}


def _compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def _prefect_yaml() -> dict:
    return yaml.safe_load((ROOT / "prefect.yaml").read_text())


def _our_image(service: dict) -> bool:
    return "build" in service


def _argv(service: dict) -> list[str]:
    """What a service runs: entrypoint + command (ours defaults to `mailarchive`)."""
    entrypoint = service.get("entrypoint", ["mailarchive"] if _our_image(service) else [])
    command = service.get("command", [])
    return [*entrypoint, *([command] if isinstance(command, str) else command)]


def _shell_commands(argv: list[str]) -> list[list[str]]:
    """The simple commands of `sh -c '…'` (split on ; && ||), or argv itself."""
    if argv[:2] != ["/bin/sh", "-c"]:
        return [argv]
    script = " ".join(argv[2:])
    return [part.split() for part in re.split(r";|&&|\|\|", script) if part.strip()]


def test_services_have_health_checks_restart_policies_and_order():
    services = _compose()["services"]
    assert LONG_RUNNING | ONE_SHOT <= set(services)
    for name in LONG_RUNNING:
        assert "healthcheck" in services[name], name
        assert services[name]["restart"] == "unless-stopped", name
    for name in ONE_SHOT:
        assert services[name]["restart"] == "no", name
    worker = services["worker"]
    # Scalable: nothing that would clash between replicas.
    assert "container_name" not in worker and "ports" not in worker
    for dependency, condition in [
        ("migrate", "service_completed_successfully"),
        ("create-bucket", "service_completed_successfully"),
        ("prefect-server", "service_healthy"),
    ]:
        assert worker["depends_on"][dependency]["condition"] == condition
    assert services["deploy"]["depends_on"]["prefect-server"]["condition"] == "service_healthy"


def test_every_mailarchive_command_exists_in_the_cli():
    services = _compose()["services"]
    cli = get_command(app)
    checked = 0
    for name, service in services.items():
        for argv in _shell_commands(_argv(service)):
            if argv and argv[0] == "mailarchive":
                command = cli.commands.get(argv[1])  # type: ignore[attr-defined]
                assert command is not None, (name, argv)
                options = {opt for param in command.params for opt in param.opts}
                used = {arg for arg in argv[2:] if arg.startswith("--")}
                assert used <= options, (name, used - options)
                checked += 1
    assert checked >= 4  # prefect-server, migrate, serve, archive


def test_workers_and_deploy_use_the_pool_of_prefect_yaml():
    services = _compose()["services"]
    pools = {d["work_pool"]["name"] for d in _prefect_yaml()["deployments"]}
    assert len(pools) == 1
    (pool,) = pools
    worker = _argv(services["worker"])
    assert worker[:3] == ["prefect", "worker", "start"]
    assert worker[worker.index("--pool") + 1] == pool
    assert worker[worker.index("--type") + 1] == "process"
    deploy = _shell_commands(_argv(services["deploy"]))
    assert ["prefect", "--no-prompt", "deploy", "--all"] in deploy
    assert any(c[:4] == ["prefect", "work-pool", "create", pool] for c in deploy)
    assert services["deploy"]["working_dir"] == services["worker"]["working_dir"] == "/app"


def test_prefect_yaml_entrypoints_exist_and_dispatch_cannot_overlap():
    from flows.deployments import WORKER_DEPLOYMENT

    deployments = {d["name"]: d for d in _prefect_yaml()["deployments"]}
    flow_names = {}
    for name, deployment in deployments.items():
        path, function = deployment["entrypoint"].split(":")
        tree = ast.parse((ROOT / path).read_text())
        decorated = [
            node
            for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name == function
        ]
        assert decorated, deployment["entrypoint"]
        flow_names[name] = next(
            kw.value.value
            for d in decorated[0].decorator_list
            if isinstance(d, ast.Call)
            for kw in d.keywords
            if kw.arg == "name"
        )
        assert "password" not in str(deployment.get("parameters", {})).lower()
    assert f"{flow_names['worker']}/worker" == WORKER_DEPLOYMENT
    dispatch = deployments["scheduled"]
    assert flow_names["scheduled"] == "archive-dispatch"
    assert dispatch["parameters"]["deployment"] == WORKER_DEPLOYMENT
    assert dispatch["concurrency_limit"] == {"limit": 1, "collision_strategy": "CANCEL_NEW"}
    (schedule,) = dispatch["schedules"]
    from archive.config import validate_cron

    validate_cron(schedule["cron"])


def test_every_variable_compose_reads_is_in_env_example():
    text = (DOCKER / "compose.yaml").read_text()
    referenced = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", text))
    example = {
        line.split("=", 1)[0]
        for line in (DOCKER / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert referenced and referenced <= example, referenced - example


def test_no_secret_values_in_compose():
    text = (DOCKER / "compose.yaml").read_text()
    for match in re.finditer(
        r"^\s*([A-Z_]*(?:PASSWORD|SECRET|ACCESS_KEY)[A-Z_]*):[ \t]*(\S+)", text, re.M
    ):
        assert match.group(2).startswith("${"), match.group(0)
    for url in re.findall(r"://[^:/\s]+:([^@\s]+)@", text):
        assert url.startswith("${"), url
    env_example = (DOCKER / ".env.example").read_text()
    for line in env_example.splitlines():
        if "PASSWORD" in line and not line.startswith("#"):
            assert line.endswith("="), line


def test_environment_names_are_settings_the_archive_reads():
    from archive.config import Settings

    known = {f"MAILARCHIVE_{name.upper()}" for name in Settings.model_fields}
    seen = 0
    for service in _compose()["services"].values():
        for key in service.get("environment", {}) or {}:
            if key.startswith("MAILARCHIVE_"):
                assert key in known, key
                seen += 1
    assert seen >= 2


def test_dockerfile_is_multi_stage_with_uv_and_locked():
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", dockerfile, re.M)) >= 2
    assert "uv sync --locked" in dockerfile
    assert re.search(r"^USER (?!root)", dockerfile, re.M)
    assert 'ENTRYPOINT ["mailarchive"]' in dockerfile
    # `prefect deploy` in the image needs prefect.yaml beside the code, at /app.
    assert re.search(r"^COPY .*prefect\.yaml", dockerfile, re.M)
    assert re.search(r"^WORKDIR /app", dockerfile, re.M)

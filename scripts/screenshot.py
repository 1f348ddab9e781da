"""Screenshot a real flow run in the Prefect UI: docs/prefect-run.png.

Starts `mailarchive server` (its own embedded PostgreSQL in a temporary data dir), archives
generated mail from the demo's POP3 server through the flow, one mailbox of three with a
wrong password (so the pictures show how a failed mailbox reads), and photographs, in headless
Chromium (Debian's `chromium`), the flow run page on its Artifacts tab (docs/prefect-run.png),
the run's table artifact (docs/prefect-artifact.png) and its summary (docs/prefect-summary.png).

    uv run python scripts/screenshot.py [--out-dir docs]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


def wait_for(url: str, server: subprocess.Popen[bytes]) -> None:
    while True:
        if server.poll() is not None:
            raise SystemExit(f"mailarchive server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)


def archive_demo(api_url: str, data_dir: Path) -> str:
    """Run archive-mailboxes on generated mail; return the flow run id."""
    os.environ["PREFECT_API_URL"] = api_url
    os.environ["MAILARCHIVE_DATA_DIR"] = str(data_dir)
    from archive.app.demo import write_demo_config
    from archive.app.demo_data import generate_mailboxes
    from archive.pop3.fake.server import FakeMailbox, FakePop3Server

    generated = generate_mailboxes(3, 120)
    boxes = {}
    failing = list(generated)[-1]
    for name, messages in generated.items():
        given = "a-wrong-password" if name == failing else f"demo-{name}"
        os.environ[f"MAILARCHIVE_DEMO_PASSWORD_{name.upper()}"] = given
        boxes[name] = FakeMailbox(password=f"demo-{name}", messages=list(messages))
    config = data_dir / "mailboxes.toml"
    from flows.archive_flow import archive_mailboxes

    with FakePop3Server(boxes) as server:
        write_demo_config(config, server.host, server.port, list(generated))
        state = archive_mailboxes(config_path=str(config), return_state=True)
    return str(state.state_details.flow_run_id)


def run_artifact(api_url: str, flow_run_id: str, kind: str) -> str:
    query = {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}, "type": {"any_": [kind]}}}
    request = urllib.request.Request(
        f"{api_url}/artifacts/filter",
        data=json.dumps(query).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        return str(json.load(reply)[0]["id"])


def screenshot(chromium: str, page: str, out: Path, profile: Path, budget_ms: int) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--screenshot={out}",
            "--window-size=1400,1000",
            f"--virtual-time-budget={budget_ms}",
            page,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    parser.add_argument("--budget-ms", type=int, default=20000, help="Chromium virtual time")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mailarchive-shot-"))
    work.chmod(0o755)  # as root, the embedded PostgreSQL runs as its own user
    port = free_port()
    env = {
        **os.environ,
        "MAILARCHIVE_DATA_DIR": str(work / "data"),
        "PREFECT_HOME": str(work / "prefect-home"),
    }
    env.pop("MAILARCHIVE_DATABASE_URL", None)
    env.pop("PREFECT_SERVER_DATABASE_CONNECTION_URL", None)
    env.pop("PREFECT_UI_API_URL", None)
    server = subprocess.Popen(
        [BIN / "mailarchive", "server", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ui = f"http://127.0.0.1:{port}"
        wait_for(f"{ui}/api/health", server)
        os.environ["PREFECT_HOME"] = env["PREFECT_HOME"]
        flow_run_id = archive_demo(f"{ui}/api", work / "data")
        table_id = run_artifact(f"{ui}/api", flow_run_id, "table")
        summary_id = run_artifact(f"{ui}/api", flow_run_id, "markdown")
        # Prefect 3.9's current UI lives under /v2; its pages take the tab as a query.
        for page, name in [
            (f"{ui}/v2/runs/flow-run/{flow_run_id}?tab=Artifacts", "prefect-run.png"),
            (f"{ui}/v2/artifacts/artifact/{table_id}", "prefect-artifact.png"),
            (f"{ui}/v2/artifacts/artifact/{summary_id}", "prefect-summary.png"),
        ]:
            out = args.out_dir / name
            screenshot(args.chromium, page, out, work / "chromium", args.budget_ms)
            print(f"{page}\n-> {out}")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait()
        from archive.index.database import stop_embedded

        stop_embedded(work / "data")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

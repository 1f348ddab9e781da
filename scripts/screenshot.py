"""Screenshot a real flow run in the Prefect UI: docs/prefect-run.png.

Starts `mailarchive server` (its own embedded PostgreSQL in a temporary data dir), archives
generated mail from the demo's POP3 server through the flow, and photographs the flow run
page, Artifacts tab, in headless Chromium (Debian's `chromium`).

    uv run python scripts/screenshot.py [--out docs/prefect-run.png] [--tab Artifacts]
"""

from __future__ import annotations

import argparse
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
    from archive.demo import write_demo_config
    from archive.demo_data import generate_mailboxes
    from archive.pop3.fakeserver import FakeMailbox, FakePop3Server

    generated = generate_mailboxes(3, 120)
    boxes = {}
    for name, messages in generated.items():
        os.environ[f"MAILARCHIVE_DEMO_PASSWORD_{name.upper()}"] = f"demo-{name}"
        boxes[name] = FakeMailbox(password=f"demo-{name}", messages=list(messages))
    config = data_dir / "mailboxes.toml"
    from flows.archive_flow import archive_mailboxes

    with FakePop3Server(boxes) as server:
        write_demo_config(config, server.host, server.port, list(generated))
        state = archive_mailboxes(config_path=str(config), return_state=True)
    return str(state.state_details.flow_run_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "prefect-run.png")
    parser.add_argument("--tab", default="Artifacts")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
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
        page = f"{ui}/runs/flow-run/{flow_run_id}?tab={args.tab}"
        args.out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                args.chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--user-data-dir={work / 'chromium'}",
                f"--screenshot={args.out}",
                "--window-size=1400,1000",
                "--virtual-time-budget=20000",
                page,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        print(f"{page}\n-> {args.out}")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait()
        from archive.config import Settings
        from archive.index.database import stop_embedded

        stop_embedded(Settings(data_dir=work / "data"))
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

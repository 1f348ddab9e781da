"""One archive run without Prefect, for the kill-loop harness: `python -m
tests.support.archive_once MAILBOX_FILE`.

Settings come from the environment as in production (`MAILARCHIVE_DATABASE_URL`,
`MAILARCHIVE_STORE_URL`); mailboxes run in parallel threads as the flow runs them. Prints
"ready" once the imports are done (so the harness kills during work, not start-up), then
one JSON line per mailbox. Exit 0 when every mailbox succeeded, 1 otherwise.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from archive.config import Settings, load_mailbox_file
from archive.pipeline.archiver import MailboxFailed
from archive.pipeline.build import get_archiver


def main(path: str) -> int:
    settings = Settings()
    boxes = load_mailbox_file(Path(path)).mailbox
    archiver = get_archiver(settings)
    print("ready", flush=True)

    def one(box):  # type: ignore[no-untyped-def]
        try:
            return archiver.run(box).to_dict()
        except MailboxFailed as failed:
            return failed.result.to_dict()

    with ThreadPoolExecutor(max_workers=len(boxes)) as pool:
        results = list(pool.map(one, boxes))
    for result in results:
        print(json.dumps(result), flush=True)
    return 0 if all(r["error"] is None for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

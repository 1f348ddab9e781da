"""An archiver wired to in-memory parts: POP3, index and store, no sockets, no database."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from archive.config import MailboxConfig
from archive.index.ledger import LedgerEntry
from archive.index.memory import MemoryIndex
from archive.pipeline.archiver import Archiver
from archive.pipeline.result import MailboxResult
from archive.pop3.fake.memory import MemoryMaildrop, MemoryPop3
from archive.store import MemoryStore, raw_key

PASSWORD = "secret"


def box(name: str, **options: object) -> MailboxConfig:
    """A mailbox on the in-memory server; its password comes from `Rig.run`'s lookup."""
    return MailboxConfig.model_validate(
        {
            "name": name,
            "host": "pop.example",
            "username": name,
            "password_secret": f"{name}-password",
            "tls": "none",
            **options,
        }
    )


def sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


@dataclass
class Clock:
    """Time for the index's stamps and LOGIN-DELAY; `sleep` moves it and records the waits."""

    now: datetime = datetime(2026, 3, 1, tzinfo=UTC)
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)


@dataclass
class Rig:
    """The in-memory server, index and store, and an archiver over them."""

    server: MemoryPop3 = field(default_factory=lambda: MemoryPop3({}))
    clock: Clock = field(default_factory=Clock)
    store: MemoryStore = field(default_factory=MemoryStore)
    index: MemoryIndex = field(init=False)
    archiver: Archiver = field(init=False)

    def __post_init__(self) -> None:
        self.index = MemoryIndex(clock=self.clock)
        self.archiver = Archiver(
            writer=self.index,
            store=self.store,
            sleep=self.clock.sleep,
            clock=self.clock,
            connect=self.server.connect,
        )

    def maildrop(
        self, name: str, messages: list[bytes], uidls: list[str | bytes] | None = None
    ) -> MemoryMaildrop:
        drop = self.server.maildrops[name] = MemoryMaildrop(PASSWORD, messages, uidls)
        return drop

    def with_store(self, store: MemoryStore) -> Rig:
        self.store = store
        self.archiver = replace(self.archiver, store=store)
        return self

    def run(self, config: MailboxConfig) -> MailboxResult:
        return self.archiver.run(config, secret_lookup=lambda _: PASSWORD)

    def ledger(self, name: str) -> list[LedgerEntry]:
        return sorted(self.index.ledger_of(name), key=lambda entry: (entry.uidl, entry.occurrence))

    def stored(self, raw: bytes) -> bytes:
        return self.store.get(raw_key(sha(raw)))

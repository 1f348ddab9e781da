"""`mailarchive reindex`: parse the stored originals again and rewrite their index rows.

After a parser upgrade (`archive.mime.PARSER_VERSION` bumped), or an extractor upgrade
(`archive.extract.EXTRACTOR_VERSION`; also messages archived before attachment text was
extracted), every message row indexed by an older version is re-parsed from its raw object,
in batches of one transaction per message. Progress is the rows' own `parser_version` and
`extract_version`, so an interrupted run resumes where it stopped. A message whose original
is missing, or whose stored copy no longer hashes to its SHA-256, is reported and skipped:
a damaged copy never reaches the index.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Engine, func, or_, select, update

from archive.defaults import PARSE_MAX_BYTES
from archive.errors import IntegrityError
from archive.extract import EXTRACTOR_VERSION, Extraction, Extractor
from archive.index import locks
from archive.index.messages import replace_parse
from archive.index.models import Message
from archive.index.texts import cached_texts
from archive.mime import PARSER_VERSION, ParsedMessage, ParseLimits
from archive.pipeline.ingest import parse_original, store_attachments
from archive.pipeline.texts import extract_texts
from archive.store import ObjectNotFound, ObjectStore, raw_key, spool_verified

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReindexResult:
    reindexed: int
    failed: tuple[str, ...]  # "sha256: why"
    remaining: int


def mark_all_stale(engine: Engine) -> int:
    """Make every message due for reindexing (`reindex --all`); returns how many."""
    with engine.begin() as conn:
        result = conn.execute(
            update(Message).where(Message.parser_version >= 0).values(parser_version=0)
        )
    return int(result.rowcount or 0)


def _stale(extracting: bool) -> ColumnElement[bool]:
    """Parsed by an older parser, or (when `extracting`) its attachments read by an older
    extractor or never (archived before migration 0008, or without an extractor)."""
    if not extracting:
        return Message.parser_version < PARSER_VERSION
    return or_(Message.parser_version < PARSER_VERSION, Message.extract_version < EXTRACTOR_VERSION)


def stale_count(engine: Engine, extracting: bool = False) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(_stale(extracting))).scalar_one())


def reindex(
    engine: Engine,
    store: ObjectStore,
    limits: ParseLimits,
    *,
    batch_size: int = 200,
    max_messages: int | None = None,
    max_bytes: int = PARSE_MAX_BYTES,
    progress: Callable[[int], None] | None = None,
    extractor: Extractor | None = None,
) -> ReindexResult:
    """Re-parse messages with parser_version < PARSER_VERSION, or extract_version <
    EXTRACTOR_VERSION when an `extractor` is given, oldest id first."""
    stale = _stale(extractor is not None)
    done = 0
    failed: list[str] = []
    after = 0
    with engine.connect() as conn, locks.store_writer(conn):
        while max_messages is None or done < max_messages:
            size = batch_size if max_messages is None else min(batch_size, max_messages - done)
            with conn.begin():
                batch = conn.execute(
                    select(Message.id, Message.sha256)
                    .where(stale, Message.id > after)
                    .order_by(Message.id)
                    .limit(size)
                ).all()
            if not batch:
                break
            for message_id, sha256 in batch:
                after = message_id
                try:
                    parsed = _parse_stored(store, sha256, limits, max_bytes)
                except ObjectNotFound:
                    failed.append(f"{sha256}: original not in {store.url}")
                    log.warning("reindex: message %s: original not in %s", sha256, store.url)
                    continue
                except IntegrityError as exc:
                    # Never index a damaged copy: the index keeps what the intact one gave.
                    failed.append(f"{sha256}: {exc}")
                    log.error("reindex: message %s skipped: %s", sha256, exc)
                    continue
                # New parsers find new parts (TNEF contents, uuencoded files): store them
                # before the rows that point at them commit.
                store_attachments(store, parsed)
                texts = None
                if extractor is not None:

                    def lookup(sha256s: Collection[str]) -> dict[str, Extraction]:
                        with conn.begin():
                            return cached_texts(conn, sha256s)

                    texts = extract_texts(parsed, extractor, lookup)
                with conn.begin():
                    replace_parse(conn, message_id, parsed, texts)
                done += 1
            if progress is not None:
                progress(done)
    return ReindexResult(done, tuple(failed), stale_count(engine, extractor is not None))


def _parse_stored(
    store: ObjectStore, sha256: str, limits: ParseLimits, max_bytes: int
) -> ParsedMessage:
    """Parse the stored original, read whole and verified against `sha256` first."""
    with spool_verified(store, raw_key(sha256), sha256) as spool:
        size = spool.seek(0, 2)
        return parse_original(spool, size, limits, max_bytes)

"""SQLAlchemy 2 models of the archive's private tables (schema `mailarchive`).

Users query the views in schema `archive` (created by the migrations), never these tables:
the views are the stable SQL surface, the tables may change between versions.

    mailbox ──< delivery >── message ──< address
                                      ├──< attachment
                                      ├──< header_field
                                      └──< defect

    hold ──< hold_message >── message          audit_log (append-only, hash-chained)
    mailbox ──< mailbox_run (one row per run of the mailbox: status, counts, error summary)

`message` holds one row per distinct raw message (unique SHA-256). `delivery` is the ledger:
one row per (mailbox, UIDL octets, occurrence) archived, pointing at the message it
delivered. The same message in ten mailboxes is one `message` row and ten `delivery` rows.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    literal_column,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from archive.index.schema import (
    MESSAGE_CJK_TEXT,
    SCHEMA,
    SEARCH_CHUNK_CHARS,
    SEARCH_CHUNK_OVERLAP,
    TEXT_VECTOR,
)


def _trigram(name: str, expression: str) -> Index:
    return Index(
        name,
        literal_column(expression).label("expr"),
        postgresql_using="gin",
        postgresql_ops={"expr": "gin_trgm_ops"},
    )


NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA, naming_convention=NAMING_CONVENTION)


class Mailbox(Base):
    __tablename__ = "mailbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    host: Mapped[str] = mapped_column(String(255))
    username: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # RFC 2449 §6.5: the LOGIN-DELAY the server announced at the last login, if any.
    login_delay_seconds: Mapped[int | None] = mapped_column(Integer)
    # Whether the server lists only part of the mailbox per session (Gmail); NULL: not known.
    listing_limited: Mapped[bool | None] = mapped_column(Boolean)


class Message(Base):
    __tablename__ = "message"
    __table_args__ = (
        CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="sha256_hex"),
        Index("ix_message_search", "search", postgresql_using="gin"),
        # Newest first, undated last: the order search results and their ranking window use.
        Index("ix_message_sent_at", text("sent_at DESC NULLS LAST")),
        Index("ix_message_message_id", "message_id"),
        Index("ix_message_thread_id", "thread_id"),
        Index("ix_message_thread_subject", "thread_subject"),
        _trigram("ix_message_cjk_trgm", MESSAGE_CJK_TEXT),
        Index(
            "ix_message_subject_search",
            literal_column("mailarchive.subject_vector(subject)"),
            postgresql_using="gin",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[str | None] = mapped_column(Text)
    in_reply_to: Mapped[str | None] = mapped_column(Text)
    reference_ids: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    subject: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    has_attachments: Mapped[bool] = mapped_column(Boolean)
    body_text: Mapped[str] = mapped_column(Text, server_default="")
    part_count: Mapped[int] = mapped_column(Integer, server_default="0")
    archived_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    # The root Message-ID of the conversation (References, In-Reply-To), else "subject:"
    # and the normalised subject; see archive.index.threads.
    thread_id: Mapped[str | None] = mapped_column(Text)
    thread_subject: Mapped[str | None] = mapped_column(Text)
    # archive.mime.PARSER_VERSION that produced these rows; `mailarchive reindex` redoes
    # the older ones.
    parser_version: Mapped[int] = mapped_column(Integer, server_default="1")
    # archive.extract.EXTRACTOR_VERSION that read its attachments (0: never); reindex too.
    extract_version: Mapped[int] = mapped_column(Integer, server_default="0")
    # The attachments' file names, one a line: searched by plain words (weight C).
    attachment_names: Mapped[str | None] = mapped_column(Text)
    # Written by PostgreSQL in the same statement as the row: the index cannot drift.
    search: Mapped[str] = mapped_column(
        TSVECTOR,
        Computed(
            f"setweight({TEXT_VECTOR}(coalesce(subject, '')), 'A') || "
            f"setweight({TEXT_VECTOR}(coalesce(attachment_names, '')), 'C') || "
            f"setweight({TEXT_VECTOR}("
            f"left(coalesce(body_text, ''), {SEARCH_CHUNK_CHARS + SEARCH_CHUNK_OVERLAP})), 'B')",
            persisted=True,
        ),
    )


class Delivery(Base):
    """The ledger: one server copy, (mailbox, UIDL, occurrence), archived once committed.

    `uidl_octets` is the unique-id as the server sent it, octet for octet, and the key;
    `uidl` is its escaped text form (`archive.pop3.uidl.uidl_text`: `\\xfc` for an octet
    outside 0x21-0x7E), for people and SQL users.

    `occurrence` numbers the copies that share one UIDL in a listing (0 for the first), so
    two different messages under one UIDL both have a row. `archived_at` is when the archive
    first saw the copy (kept when a UIDL reset relabels it). `delete_requested_at` is set
    when the server acknowledged DELE, `deleted_at` once QUIT confirmed it (RFC 1939 §6).
    """

    __tablename__ = "delivery"
    __table_args__ = (UniqueConstraint("mailbox_id", "uidl_octets", "occurrence"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailbox.id", ondelete="CASCADE"))
    uidl: Mapped[str] = mapped_column(String(255))
    uidl_octets: Mapped[bytes] = mapped_column(LargeBinary)
    occurrence: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    message_id: Mapped[int] = mapped_column(ForeignKey("message.id"), index=True)
    archived_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    delete_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Address(Base):
    __tablename__ = "address"
    __table_args__ = (
        CheckConstraint(
            "role IN ('from', 'sender', 'reply-to', 'to', 'cc', 'bcc')", name="role_known"
        ),
        Index("ix_address_address", "address"),
        Index(
            "ix_address_address_trgm",
            "address",
            postgresql_using="gin",
            postgresql_ops={"address": "gin_trgm_ops"},
        ),
        _trigram("ix_address_name_trgm", "mailarchive.fold(name)"),
        # from:bob@exam… is a prefix search (LIKE 'bob@exam%'), whatever the collation.
        Index(
            "ix_address_address_prefix",
            "address",
            postgresql_ops={"address": "text_pattern_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("message.id", ondelete="CASCADE"), index=True
    )
    ordinal: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(Text)
    address: Mapped[str] = mapped_column(Text)


class Attachment(Base):
    __tablename__ = "attachment"
    __table_args__ = (
        Index("ix_attachment_sha256", "sha256"),
        _trigram("ix_attachment_filename_trgm", "mailarchive.fold(filename)"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("message.id", ondelete="CASCADE"), index=True
    )
    ordinal: Mapped[int] = mapped_column(Integer)
    part_path: Mapped[str] = mapped_column(String(200))
    filename: Mapped[str | None] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(Text)
    disposition: Mapped[str | None] = mapped_column(String(32))
    content_id: Mapped[str | None] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    # archive.extract.Status of its text (NULL: archived before extraction, see reindex),
    # and why, for failed, truncated, encrypted, unsupported and no_text.
    text_status: Mapped[str | None] = mapped_column(String(16))
    text_detail: Mapped[str | None] = mapped_column(Text)


class ExtractedText(Base):
    """The text of one distinct attachment (by SHA-256), extracted once for the archive.

    Written in the transaction of the first message that carries it; later messages with
    the same bytes take `content` from here. Rows of an older `extractor_version` are
    extracted again when met.
    """

    __tablename__ = "extracted_text"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)
    content: Mapped[str] = mapped_column(Text, server_default="")
    extractor_version: Mapped[int] = mapped_column(Integer)
    extracted_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class HeaderField(Base):
    __tablename__ = "header_field"
    __table_args__ = (Index("ix_header_field_name", "name"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("message.id", ondelete="CASCADE"), index=True
    )
    ordinal: Mapped[int] = mapped_column(Integer)
    # NULL for the message's own fields; the enclosure's part path for an enclosed message's.
    part_path: Mapped[str | None] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(Text)
    value: Mapped[str] = mapped_column(Text)


class Defect(Base):
    """One `archive.mime.Defect` of a message: `kind` is a `DefectKind` value (the closed
    set is kept in Python, so a new kind needs no migration); `part_path` is NULL for the
    message as a whole."""

    __tablename__ = "defect"
    __table_args__ = (Index("ix_defect_kind", "kind"),)

    message_id: Mapped[int] = mapped_column(
        ForeignKey("message.id", ondelete="CASCADE"), primary_key=True
    )
    ordinal: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    part_path: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[str] = mapped_column(Text)


class TextChunk(Base):
    """Searchable text that does not fit the message row's vector.

    A body longer than SEARCH_CHUNK_CHARS continues here (`part_path` NULL, `start_char`
    its offset in `body_text`), and so does the text of text attachments and delivery
    reports (`part_path` the attachment's) and of alternatives not shown as the body
    (`part_path` the alternative's). `search` is written by the index writer in the
    message's transaction: the subject (weight A) and `content` (weight B).
    """

    __tablename__ = "text_chunk"
    __table_args__ = (
        Index("ix_text_chunk_search", "search", postgresql_using="gin"),
        _trigram("ix_text_chunk_cjk_trgm", "mailarchive.cjk_text(content)"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("message.id", ondelete="CASCADE"), index=True
    )
    ordinal: Mapped[int] = mapped_column(Integer)
    part_path: Mapped[str | None] = mapped_column(String(200))
    start_char: Mapped[int] = mapped_column(BigInteger)
    content: Mapped[str] = mapped_column(Text)
    search: Mapped[str] = mapped_column(TSVECTOR)


class AuditEntry(Base):
    """One row of the append-only audit trail (migration 0009; read it in `archive.audit`).

    A trigger fills `at`, `db_role`, `client`, `prev_sha256` and `sha256` on insert, whatever
    the INSERT said, and refuses UPDATE, DELETE and TRUNCATE; `sha256` covers the row and the
    previous row's hash, so an edited or removed row breaks the chain (`audit verify`).
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    action: Mapped[str] = mapped_column(String(40))
    db_role: Mapped[str] = mapped_column(Text, server_default=text("session_user"))
    os_user: Mapped[str | None] = mapped_column(Text)
    client: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, object]] = mapped_column(JSONB, server_default="{}")
    prev_sha256: Mapped[str | None] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64), server_default="")


class Hold(Base):
    """A legal hold: a mailbox (every message delivered to it, now or later), or a fixed list
    of messages (`hold_message`: those a query matched when placed, or named by hash).
    A released hold stays, with who released it, when and why."""

    __tablename__ = "hold"
    __table_args__ = (
        CheckConstraint("kind IN ('mailbox', 'query', 'messages')", name="kind_known"),
        Index(
            "ix_hold_active_name", "name", unique=True, postgresql_where=text("released_at IS NULL")
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    mailbox_id: Mapped[int | None] = mapped_column(
        ForeignKey("mailbox.id", ondelete="SET NULL"), index=True
    )
    mailbox_name: Mapped[str | None] = mapped_column(String(200))
    query: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_by: Mapped[str] = mapped_column(Text, server_default=text("session_user"))
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    released_by: Mapped[str | None] = mapped_column(Text)
    release_reason: Mapped[str | None] = mapped_column(Text)


class HoldMessage(Base):
    """A message a `query` or `messages` hold covers; `sha256` outlives the message row."""

    __tablename__ = "hold_message"

    hold_id: Mapped[int] = mapped_column(ForeignKey("hold.id"), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("message.id", ondelete="SET NULL"), index=True
    )


class MailboxRun(Base):
    """One mailbox run (an attempt; a retry is a row of its own), written when it ends
    (migration 0010). `error`: one line, the archive's own message or an exception type.
    Not reached: new - archived - duplicates - failed_messages (before 2026-12: all failed)."""

    __tablename__ = "mailbox_run"
    __table_args__ = (
        CheckConstraint(
            "status IN ('ok', 'failed', 'skipped', 'deferred', 'partial')", name="status_known"
        ),
        Index("ix_mailbox_run_mailbox_id_finished_at", "mailbox_id", "finished_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailbox.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16))
    listed: Mapped[int] = mapped_column(Integer, server_default="0")
    new: Mapped[int] = mapped_column(Integer, server_default="0")
    archived: Mapped[int] = mapped_column(Integer, server_default="0")
    duplicates: Mapped[int] = mapped_column(Integer, server_default="0")
    deleted: Mapped[int] = mapped_column(Integer, server_default="0")
    failed_messages: Mapped[int] = mapped_column(Integer, server_default="0")
    bytes: Mapped[int] = mapped_column(BigInteger, server_default="0")
    interrupted: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    error: Mapped[str | None] = mapped_column(Text)

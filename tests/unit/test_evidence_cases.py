"""A DELE only on evidence, end to end over the in-memory server (shared/cases/README.md,
"Unique-ids outside printable ASCII, and unique-ids that name another message").

Identity on the server is never the unique-id alone: each case lists a new message where the
ledger knows an archived one, by a colliding id or the very same id, with the same size.
"""

from __future__ import annotations

import io

import pytest

from archive.pipeline.result import MailboxFailed
from archive.store import raw_key
from tests.support.memory import Rig, box, sha

MUELLER = b"inbox-M\xfcller-0001"  # Latin-1 ü
MOELLER = b"inbox-M\xf6ller-0001"  # Latin-1 ö: one octet apart


def mail(tag: str, body: str) -> bytes:
    return (
        f"From: a@example.org\r\nSubject: report {tag}\r\n"
        f"Message-ID: <{tag}@example.org>\r\n\r\n{body}\r\n"
    ).encode()


A = mail("a", "first version")
B = mail("b", "other version")
assert len(A) == len(B)


def _before_any_dele(commands: list[str], retr: str) -> bool:
    deles = [i for i, line in enumerate(commands) if line.startswith("DELE")]
    return retr in commands and all(commands.index(retr) < i for i in deles)


def test_ids_one_octet_apart_are_two_messages():
    rig = Rig()
    drop = rig.maildrop("ids", [A], [MUELLER])
    assert rig.run(box("ids")).archived == 1
    drop.remove(MUELLER)
    drop.add(B, MOELLER)
    rig.server.log.clear()

    result = rig.run(box("ids", delete_after_archive=True))

    commands = rig.server.commands()
    assert _before_any_dele(commands, "RETR 1") and "DELE 1" in commands
    assert (result.new, result.archived, result.deleted) == (1, 1, 1)
    assert rig.stored(B) == B
    assert {(e.uidl, e.sha256) for e in rig.ledger("ids")} == {(MUELLER, sha(A)), (MOELLER, sha(B))}


def test_a_unique_id_reused_for_another_message_of_the_same_size_is_retrieved_first():
    rig = Rig()
    drop = rig.maildrop("reuse", [A], [b"0001"])
    rig.run(box("reuse"))
    drop.remove(b"0001")
    drop.add(B, b"0001")  # the maildrop was rebuilt: same id, same size, another message
    rig.server.log.clear()

    result = rig.run(box("reuse", delete_after_archive=True))

    commands = rig.server.commands()
    # TOP showed other headers, so A's row was no evidence: B was retrieved, then deleted.
    assert [c for c in commands if c.split()[0] in ("TOP", "RETR", "DELE")] == [
        "TOP 1 0",
        "RETR 1",
        "DELE 1",
    ]
    assert (result.new, result.archived, result.deleted) == (1, 1, 1)
    assert rig.stored(B) == B
    rows = {e.sha256: e for e in rig.ledger("reuse")}
    assert rows[sha(B)].deleted_at is not None
    # A's row stands for A, which the server no longer has: it was never marked deleted.
    assert rows[sha(A)].delete_requested_at is None and rows[sha(A)].deleted_at is None


def test_a_reused_id_under_older_than_is_archived_and_left_on_the_server():
    rig = Rig()
    drop = rig.maildrop("old", [A], [b"0001"])
    rig.run(box("old"))
    drop.remove(b"0001")
    drop.add(B, b"0001")
    rig.clock.sleep(3 * 86400)
    result = rig.run(box("old", delete_older_than_days=2))
    # B is new to the archive: archived now, and young, so it stays.
    assert (result.archived, result.deleted) == (1, 0)
    assert rig.server.maildrops["old"].messages == [B] and rig.stored(B) == B


def test_the_same_message_proven_by_top_is_deleted_without_retrieval():
    rig = Rig()
    rig.maildrop("same", [A], [b"0001"])
    rig.run(box("same"))
    rig.server.log.clear()
    result = rig.run(box("same", delete_after_archive=True))
    assert rig.server.commands("RETR") == [] and rig.server.commands("TOP") == ["TOP 1 0"]
    assert (result.new, result.deleted) == (0, 1)


def test_without_top_an_earlier_copy_is_retrieved_and_hashed_before_dele():
    rig = Rig()
    rig.server.offers_top = False
    rig.maildrop("notop", [A], [b"0001"])
    rig.run(box("notop"))
    rig.server.log.clear()
    result = rig.run(box("notop", delete_after_archive=True))
    assert _before_any_dele(rig.server.commands(), "RETR 1")
    # Retrieved only to prove it: the archived content again, so not new.
    assert (result.new, result.archived, result.deleted) == (0, 0, 1)


def test_a_different_list_size_under_a_known_id_is_retrieved_without_top():
    rig = Rig()
    drop = rig.maildrop("size", [A], [b"0001"])
    rig.run(box("size"))
    drop.remove(b"0001")
    drop.add(B + b"longer\r\n", b"0001")
    rig.server.log.clear()
    result = rig.run(box("size", delete_after_archive=True))
    assert rig.server.commands("TOP") == []
    assert _before_any_dele(rig.server.commands(), "RETR 1")
    assert (result.archived, result.deleted) == (1, 1)


def test_a_stored_original_the_server_cannot_repair_fails_the_mailbox_and_nothing_is_deleted():
    rig = Rig()
    drop = rig.maildrop("lost", [A], [b"0001"])
    rig.run(box("lost"))
    rig.store.put(raw_key(sha(A)), io.BytesIO(b"bit rot"), 7)
    drop.remove(b"0001")
    drop.add(B, b"0001")  # the server no longer has A
    with pytest.raises(MailboxFailed) as failed:
        rig.run(box("lost", delete_after_archive=True))
    result = failed.value.result
    assert (result.repaired, result.unrepaired, result.archived, result.deleted) == (0, 1, 1, 0)
    assert result.error is not None and sha(A) in result.error and sha(B) in result.error
    assert not failed.value.transient
    assert rig.server.commands("DELE") == [] and rig.server.maildrops["lost"].messages == [B]
    assert rig.stored(B) == B


def test_retrievals_for_evidence_keep_to_the_session_caps():
    rig = Rig()
    rig.server.offers_top = False
    raws = [mail(f"c{i}", "capped") for i in range(3)]
    rig.maildrop("cap", list(raws))
    rig.run(box("cap"))
    rig.server.log.clear()
    capped = box("cap", delete_after_archive=True, max_messages_per_session=1)
    first = rig.run(capped)
    # One retrieval in the session: one proven and deleted, the others wait, undeleted.
    assert rig.server.commands("RETR") == ["RETR 1"] and rig.server.commands("DELE") == ["DELE 1"]
    assert first.deleted == 1 and rig.server.maildrops["cap"].messages == raws[1:]
    assert rig.run(capped).deleted == 1 and rig.server.maildrops["cap"].messages == raws[2:]

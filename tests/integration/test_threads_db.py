"""thread_id as the index computes it, read back from SQL."""

from __future__ import annotations

from sqlalchemy import Engine, text


def test_thread_ids_in_the_archive(loaded_archive: Engine):
    with loaded_archive.connect() as conn:
        rows = dict(conn.execute(text("SELECT uidl, thread_id FROM archive.messages")).all())
    # s3 has only In-Reply-To (s2), and joins s2's thread through the parent's row.
    assert rows["s1"] == rows["s2"] == rows["s3"] == "budget-1@example.com"
    # a2 and a3 have no References and differ in case and spacing of "Re:".
    assert rows["a2"] == rows["a3"] == "subject:planning offsite"
    assert rows["s4"] == rows["u5"] == "invoice-1@example.org"
    assert rows["u6"] == "subject:invoice copy"
    assert rows["u1"] == "ru-1@example.ru"

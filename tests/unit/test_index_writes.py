"""The hot path's hand-written statements against the models: a column added to a model
without a value here (or a value for a column the model lacks) fails."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Table

from archive.index import writes
from archive.index.messages import child_rows, message_values
from archive.index.models import (
    Address,
    Attachment,
    Base,
    Defect,
    Delivery,
    HeaderField,
    Message,
    TextChunk,
)
from archive.mime import parse_message

# Every kind of child row: addresses, an attachment with text (a chunk), an enclosed
# message's header fields, and a defect (the body part's unknown transfer encoding).
RAW = (
    b"From: Ann <ann@example.com>\r\nTo: bob@example.com\r\nSubject: rows\r\n"
    b"Message-ID: <rows@example.com>\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-unknown\r\n\r\nbody\r\n"
    b"--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\n"
    b"\r\nattached words\r\n"
    b"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nFrom: c@example.com\r\n\r\n"
    b"inner body\r\n--b--\r\n"
)

CHILD_MODELS = {
    "address": Address,
    "attachment": Attachment,
    "text_chunk": TextChunk,
    "header_field": HeaderField,
    "defect": Defect,
}


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _model_columns(model: type[Base]) -> list[str]:
    """What the model says a fresh row needs from its writer."""
    table = _table(model)
    filled = writes.SERVER_FILLED.get(table.name, frozenset())
    return [
        c.name
        for c in table.columns
        if c.name != "id" and c.computed is None and c.name not in filled
    ]


def _inserted_columns(sql: str, table: Table) -> list[str]:
    found = re.findall(rf"INSERT INTO {re.escape(table.fullname)} \(([^)]*)\)", sql)
    assert len(found) == 1, f"{table.fullname} is inserted {len(found)} times"
    return [name.strip() for name in found[0].split(",")]


@pytest.mark.parametrize("model", [Message, Delivery, *CHILD_MODELS.values()])
def test_each_statement_inserts_the_models_columns(model: type[Base]):
    table = _table(model)
    sql = writes.RECORD_NEW
    assert _inserted_columns(sql, table) == _model_columns(model)
    if model is Delivery:
        assert _inserted_columns(writes.RECORD_KNOWN, table) == _model_columns(model)


def test_server_filled_columns_have_server_defaults():
    for name, columns in writes.SERVER_FILLED.items():
        table = Base.metadata.tables[f"mailarchive.{name}"]
        for column in columns:
            assert table.c[column].server_default is not None or table.c[column].nullable


def test_row_builders_give_exactly_the_columns_the_statement_names():
    parsed = parse_message(RAW)
    rows = child_rows(parsed)
    for name, model in CHILD_MODELS.items():
        built = getattr(rows, name)
        assert built, f"the sample gives no {name} row"
        statement_filled = {"message_id", "search"}
        wanted = [c for c in _model_columns(model) if c not in statement_filled]
        assert all(list(row) == wanted for row in built), name
    message = message_values("0" * 64, len(RAW), parsed) | writes.thread_params(parsed)
    assert sorted(message) == sorted(
        _model_columns(Message) + ["thread_parent", "thread_by_subject"]
    )


def test_a_row_that_misses_or_invents_a_column_fails_before_anything_is_sent():
    # json_to_recordset would read a missing key as NULL and ignore an extra one.
    with pytest.raises(KeyError, match="role"):
        writes.rows_json("address", ("ordinal", "role"), [{"ordinal": 0}])
    with pytest.raises(KeyError, match="colour"):
        writes.rows_json("address", ("ordinal",), [{"ordinal": 0, "colour": "red"}])
    assert writes.rows_json("address", ("ordinal", "name"), [{"ordinal": 0, "name": "Zoë"}]) == {
        "address": '[{"ordinal":0,"name":"Zoë"}]'
    }

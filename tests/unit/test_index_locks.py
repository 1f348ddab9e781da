"""archive.index.locks: the advisory-lock keys, derived without a database.

Every worker that archives into one database must derive the same keys, whatever release it
runs, or two of them would hold "the same" mailbox at once: the values are pinned.
"""

from __future__ import annotations

import hashlib

import pytest

from archive.index.locks import host_key, mailbox_key

INT64 = (-(2**63), 2**63 - 1)
INT32 = (-(2**31), 2**31 - 1)


def test_mailbox_keys_are_pinned():
    # The first 8 bytes of SHA-256("mailarchive:mailbox:" + name), big-endian, signed.
    assert mailbox_key("sales") == -7675587194550368594
    assert mailbox_key("legal") == 2049190029449033542
    assert mailbox_key("info@example.com") == 1057904612280605393


def test_host_keys_are_pinned():
    # The first 4 bytes of SHA-256("mailarchive:host:" + lower-cased host), big-endian, signed.
    assert host_key("pop.gmail.com") == 847853559
    assert host_key("legal") == -1628847312


def test_a_mailbox_key_is_the_sha256_prefix_read_as_a_signed_bigint():
    digest = hashlib.sha256(b"mailarchive:mailbox:sales").digest()
    assert digest[0] >= 0x80  # so the key is negative: PostgreSQL's bigint is signed
    assert mailbox_key("sales") == int.from_bytes(digest[:8], "big", signed=True)


@pytest.mark.parametrize("name", ["", "a", "sales", "ünïcode", "x" * 1000])
def test_keys_fit_the_postgresql_integer_types(name):
    assert INT64[0] <= mailbox_key(name) <= INT64[1]
    assert INT32[0] <= host_key(name) <= INT32[1]


def test_host_names_are_case_insensitive_mailbox_names_are_not():
    assert host_key("POP.Gmail.COM") == host_key("pop.gmail.com")
    assert mailbox_key("Sales") != mailbox_key("sales")


def test_the_two_namespaces_give_different_keys_for_one_name():
    name = "pop.example.com"
    digest = hashlib.sha256(f"mailarchive:mailbox:{name}".encode()).digest()
    assert host_key(name) != int.from_bytes(digest[:4], "big", signed=True)


def test_many_mailbox_names_give_distinct_keys():
    names = [f"box{i}" for i in range(10_000)]
    assert len({mailbox_key(name) for name in names}) == len(names)

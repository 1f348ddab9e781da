"""Which conversation a message belongs to: `message.thread_id`.

RFC 5322 §3.6.4: References lists the thread's ancestors, the first being the root, and
In-Reply-To names the parent. So the thread of a reply is its first reference; without
References, its parent's thread (looked up by the writer), else the parent's id; a message
that replies to nothing starts a thread named after its own Message-ID.

Mail without those headers (some mobile clients, some web forms) is threaded by subject,
the way mail clients do it: "Re: AW: [team] Budget" and "Budget" are one thread. Such a
thread is named "subject:" plus the normalised subject.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from archive.mime import ParsedMessage

# Reply and forward prefixes in the languages mail clients localise them to, with the
# counters some add ("Re[2]:", "Re(3):"), and mailing-list tags in brackets.
_PREFIX = re.compile(
    r"^\s*(?:(?:re|fw|fwd|aw|sv|vs|wg|antw|antwort|tr|rif|r|ref|odp|res|enc|rv|vl|ynt|"
    r"回复|回覆|答复|转发|轉寄|返信|転送|ΑΠ|ΣΧΕΤ|ΠΡΘ|Ответ|Отв|Пересл)"
    r"\s*(?:\[\d+\]|\(\d+\))?\s*[:：]|\[[^\]]{0,60}\])\s*",
    re.IGNORECASE,
)
_SPACE = re.compile(r"\s+")
MAX_SUBJECT = 500


@dataclass(frozen=True, slots=True)
class ThreadKey:
    """What the writer needs to place a message in a thread.

    `thread_id` is final unless `parent` is set: then the parent's thread, if that message
    is archived, wins. `subject` is the normalised subject, stored to thread later mail
    that has no References.
    """

    thread_id: str | None
    parent: str | None
    subject: str | None
    by_subject_only: bool


def normalise_subject(subject: str | None) -> str | None:
    """Lower case, single spaces, reply/forward prefixes and list tags removed."""
    if not subject:
        return None
    text = _SPACE.sub(" ", subject).strip()
    for _ in range(20):  # "Re: Re: Re: ..." is common; a bound keeps hostile input cheap
        stripped = _PREFIX.sub("", text, count=1)
        if stripped == text:
            break
        text = stripped
    text = text.strip().lower()[:MAX_SUBJECT]
    return text or None


def is_reply_subject(subject: str | None) -> bool:
    """Whether the subject carried a reply or forward prefix."""
    return (
        bool(subject)
        and normalise_subject(subject)
        != _SPACE.sub(" ", str(subject)).strip().lower()[:MAX_SUBJECT]
    )


def thread_key(parsed: ParsedMessage) -> ThreadKey:
    subject = normalise_subject(parsed.subject)
    if parsed.references:
        return ThreadKey(parsed.references[0], None, subject, False)
    if parsed.in_reply_to:
        return ThreadKey(parsed.in_reply_to, parsed.in_reply_to, subject, False)
    if parsed.message_id and not is_reply_subject(parsed.subject):
        return ThreadKey(parsed.message_id, None, subject, False)
    if subject:
        return ThreadKey(f"subject:{subject}", None, subject, True)
    return ThreadKey(parsed.message_id, None, None, False)

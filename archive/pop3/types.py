"""Plain value types of the POP3 layer, shared by the client and the mailbox configuration."""

from __future__ import annotations

from typing import Literal

TlsMode = Literal["implicit", "starttls", "none"]
"""implicit: TLS from the first byte (RFC 8314, port 995); starttls: STLS (RFC 2595); none."""

AuthMethod = Literal["auto", "user", "plain", "login", "xoauth2", "oauthbearer", "apop"]
"""auto: SASL PLAIN when offered, else USER/PASS (RFC 1939 §7, RFC 5034); the rest by name."""

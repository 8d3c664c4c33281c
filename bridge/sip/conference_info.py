"""RFC 4575 ``application/conference-info+xml`` documents: the meeting's roster with each user's
audio status, for phones that SUBSCRIBE to the ``conference`` event package (SPEC §5). Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

CONTENT_TYPE = "application/conference-info+xml"
EVENT = "conference"


@dataclass(frozen=True, slots=True)
class Member:
    attendee_id: str
    display_name: str
    audio: bool
    """Sending (unmuted): ``sendrecv``; muted: ``recvonly`` (the server still sends it the meeting)."""


def document(entity: str, subject: str, version: int, members: Iterable[Member]) -> bytes:
    """A full-state document (RFC 4575 §4.1): every notification carries the whole roster, so a
    phone that missed one is right again with the next."""
    users = "".join(_user(m) for m in sorted(members, key=lambda m: m.attendee_id))
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" '
        f'entity={quoteattr(entity)} state="full" version="{version}">\n'
        f"  <conference-description><display-text>{escape(subject)}</display-text>"
        "</conference-description>\n"
        f"  <users>\n{users}  </users>\n"
        "</conference-info>\n"
    )
    return text.encode()


def _user(member: Member) -> str:
    entity = quoteattr(f"urn:spaces:attendee:{member.attendee_id}")
    status = "sendrecv" if member.audio else "recvonly"
    return (
        f'    <user entity={entity} state="full">\n'
        f"      <display-text>{escape(member.display_name)}</display-text>\n"
        f"      <endpoint entity={entity}>\n"
        "        <status>connected</status>\n"
        '        <media id="audio"><type>audio</type>'
        f"<status>{status}</status></media>\n"
        "      </endpoint>\n"
        "    </user>\n"
    )

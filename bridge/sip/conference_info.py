"""RFC 4575 ``application/conference-info+xml`` documents: a conference's users with each one's audio
status, the body of the ``conference`` event package's NOTIFYs (RFC 4575 over RFC 6665). Pure: who the
users are, and which URIs name them, is the caller's."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

CONTENT_TYPE = "application/conference-info+xml"
EVENT = "conference"


@dataclass(frozen=True, slots=True)
class User:
    """One ``<user>`` element (RFC 4575 §5.6), with one endpoint and its audio stream."""

    entity: str
    """The user's URI, also its endpoint's: the key of the user in the document."""
    display_text: str
    audio: bool
    """Sending (unmuted): ``sendrecv``; muted: ``recvonly`` (it still receives the conference)."""


def document(entity: str, subject: str, version: int, users: Iterable[User]) -> bytes:
    """A full-state document (RFC 4575 §4.1): every notification carries every user, so a
    subscriber that missed one is right again with the next. Users are in ``entity`` order, so that
    the same users always give the same bytes."""
    elements = "".join(_user(u) for u in sorted(users, key=lambda u: u.entity))
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" '
        f'entity={quoteattr(entity)} state="full" version="{version}">\n'
        f"  <conference-description><display-text>{escape(subject)}</display-text>"
        "</conference-description>\n"
        f"  <users>\n{elements}  </users>\n"
        "</conference-info>\n"
    )
    return text.encode()


def _user(user: User) -> str:
    entity = quoteattr(user.entity)
    status = "sendrecv" if user.audio else "recvonly"
    return (
        f'    <user entity={entity} state="full">\n'
        f"      <display-text>{escape(user.display_text)}</display-text>\n"
        f"      <endpoint entity={entity}>\n"
        "        <status>connected</status>\n"
        '        <media id="audio"><type>audio</type>'
        f"<status>{status}</status></media>\n"
        "      </endpoint>\n"
        "    </user>\n"
    )

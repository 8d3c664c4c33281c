"""RFC 4575 documents: well-formed, namespaced, escaped, one user per member with its audio."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from bridge.calls.conference_info import Member, document

NS = {"c": "urn:ietf:params:xml:ns:conference-info"}


def test_document_lists_members_with_audio_status_and_escapes_names() -> None:
    members = [Member("b2", 'Bob & "Al" <x>', audio=False), Member("a1", "Ann", audio=True)]
    root = ET.fromstring(document("sip:demo@127.0.0.1", "demo & co", 7, members))
    assert root.tag == "{urn:ietf:params:xml:ns:conference-info}conference-info"
    assert root.attrib == {"entity": "sip:demo@127.0.0.1", "state": "full", "version": "7"}
    assert root.findtext("c:conference-description/c:display-text", namespaces=NS) == "demo & co"
    users = root.findall("c:users/c:user", NS)
    assert [u.findtext("c:display-text", namespaces=NS) for u in users] == [
        "Ann",
        'Bob & "Al" <x>',
    ]
    statuses = [u.findtext("c:endpoint/c:media/c:status", namespaces=NS) for u in users]
    assert statuses == ["sendrecv", "recvonly"]


def test_empty_roster() -> None:
    root = ET.fromstring(document("sip:x@h", "x", 1, []))
    assert root.findall("c:users/c:user", NS) == []

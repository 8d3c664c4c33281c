"""RFC 4575 documents: well-formed, namespaced, escaped, one user element per user with its audio."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from bridge.sip.conference_info import User, document

NS = {"c": "urn:ietf:params:xml:ns:conference-info"}


def test_document_lists_users_with_audio_status_and_escapes_names() -> None:
    users = [User("urn:x:b2", 'Bob & "Al" <x>', audio=False), User("urn:x:a1", "Ann", audio=True)]
    root = ET.fromstring(document("sip:demo@127.0.0.1", "demo & co", 7, users))
    assert root.tag == "{urn:ietf:params:xml:ns:conference-info}conference-info"
    assert root.attrib == {"entity": "sip:demo@127.0.0.1", "state": "full", "version": "7"}
    assert root.findtext("c:conference-description/c:display-text", namespaces=NS) == "demo & co"
    elements = root.findall("c:users/c:user", NS)
    assert [u.attrib["entity"] for u in elements] == ["urn:x:a1", "urn:x:b2"]
    assert [u.findtext("c:display-text", namespaces=NS) for u in elements] == [
        "Ann",
        'Bob & "Al" <x>',
    ]
    statuses = [u.findtext("c:endpoint/c:media/c:status", namespaces=NS) for u in elements]
    assert statuses == ["sendrecv", "recvonly"]


def test_empty_roster() -> None:
    root = ET.fromstring(document("sip:x@h", "x", 1, []))
    assert root.findall("c:users/c:user", NS) == []

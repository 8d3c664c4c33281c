"""The AudioBridge request builders and answer parsers, without Janus: the shapes that worked
against Janus 1.1.2 (docs/mixer.md)."""

from __future__ import annotations

import pytest

from bridge.conference.server.mixer import audiobridge as ab


def test_a_room_is_created_in_memory_for_plain_rtp() -> None:
    assert ab.create_room(7, admin_key="k", secret="s", sampling_rate=8000) == {
        "request": "create",
        "room": 7,
        "admin_key": "k",
        "secret": "s",
        "description": "",
        "is_private": True,
        "permanent": False,
        "sampling_rate": 8000,
        "allow_rtp_participants": True,
        "audiolevel_event": False,
    }


def test_a_room_is_destroyed_with_its_secret() -> None:
    assert ab.destroy_room(7, secret="s") == {
        "request": "destroy",
        "room": 7,
        "secret": "s",
        "permanent": False,
    }


@pytest.mark.parametrize(("codec", "janus"), [("PCMU", "pcmu"), ("PCMA", "pcma")])
def test_a_phone_joins_with_its_rtp_address(codec: str, janus: str) -> None:
    body = ab.join_rtp(
        7, 12, display="Desk 12", codec=codec, ip="127.0.0.1", port=20002, muted=True
    )
    assert body == {
        "request": "join",
        "room": 7,
        "id": 12,
        "display": "Desk 12",
        "muted": True,
        "codec": janus,
        "rtp": {"ip": "127.0.0.1", "port": 20002},
    }


def test_mutes_are_the_administrators() -> None:
    assert ab.mute(7, 12, secret="s", muted=True) == {
        "request": "mute",
        "room": 7,
        "id": 12,
        "secret": "s",
    }
    assert ab.mute(7, 12, secret="s", muted=False)["request"] == "unmute"


def test_leave_kick_and_list() -> None:
    assert ab.leave() == {"request": "leave"}
    assert ab.kick(7, 12, secret="s") == {"request": "kick", "room": 7, "id": 12, "secret": "s"}
    assert ab.list_participants(7) == {"request": "listparticipants", "room": 7}


def test_core_answers_give_their_data_or_raise() -> None:
    assert ab.core_data({"janus": "success", "transaction": "t1", "data": {"id": 5}}) == {"id": 5}
    with pytest.raises(ab.JanusError) as raised:
        ab.core_data({"janus": "error", "error": {"code": 458, "reason": "No such session"}})
    assert (raised.value.code, raised.value.reason) == (458, "No such session")
    with pytest.raises(ab.JanusError):
        ab.core_data(["not", "an", "object"])


def test_plugin_answers_give_their_data_or_raise() -> None:
    answer = {
        "janus": "success",
        "sender": 9,
        "plugindata": {"plugin": ab.PLUGIN, "data": {"audiobridge": "created", "room": 7}},
    }
    assert ab.plugin_data(answer) == {"audiobridge": "created", "room": 7}
    refused = {
        "janus": "success",
        "plugindata": {
            "plugin": ab.PLUGIN,
            "data": {"audiobridge": "event", "error_code": 489, "error": "Unauthorized"},
        },
    }
    with pytest.raises(ab.JanusError) as raised:
        ab.plugin_data(refused)
    assert raised.value.code == 489
    with pytest.raises(ab.JanusError):
        ab.plugin_data({"janus": "success"})  # no plugin data at all


def test_the_joined_event_names_januss_rtp_address() -> None:
    data = {
        "audiobridge": "joined",
        "room": 7,
        "id": 12,
        "participants": [],
        "rtp": {"ip": "127.0.0.1", "port": 30002, "payload_type": 0},
    }
    assert ab.parse_joined(data) == ab.RtpJoined(12, "127.0.0.1", 30002, 0)
    with pytest.raises(ab.JanusError):
        ab.parse_joined({"audiobridge": "joined", "room": 7, "id": 12, "participants": []})

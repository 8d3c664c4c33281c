"""What an offer/answer exchange settles for a relay: one G.711 codec and telephone-events in the
answer, and the phone's RTP address, payload types and packet time."""

from __future__ import annotations

import pytest

from bridge.sip import offer_answer, sdp
from bridge.sip.errors import RemoteProtocolError
from bridge.sip.rtpsession import audio_peer, formats_for

G711 = formats_for(("pcmu", "pcma"))


def offer(body: str) -> sdp.SessionDescription:
    return sdp.parse_sdp(body.replace("\n", "\r\n").encode())


def answer(phone: sdp.SessionDescription) -> sdp.SessionDescription:
    return offer_answer.build_answer(
        phone,
        local_address="::1",
        ports={"audio": 20000},
        session_id=1,
        session_version=1,
        accept=G711,
        ptime=20,
    )


BARESIP = """v=0
o=- 1 2 IN IP6 ::1
s=-
c=IN IP6 ::1
t=0 0
m=audio 4000 RTP/AVP 9 8 0 101 102
a=rtpmap:101 telephone-event/8000
a=rtpmap:102 telephone-event/16000
a=ptime:30
a=rtcp:4005
m=video 4002 RTP/AVP 96
a=rtpmap:96 H264/90000
"""


def test_the_answer_takes_one_g711_codec_and_8k_events_and_rejects_video() -> None:
    phone = offer(BARESIP)
    ours = answer(phone)
    audio, video = ours.media
    assert audio.formats == ("8", "101")  # PCMA comes first in the offer; G.722 is not ours
    assert audio.attribute("ptime") == "20"  # what we send, whatever the phone sends
    assert video.rejected
    assert ours.connection == "IN IP6 ::1"
    peer = audio_peer(phone, ours)
    assert peer is not None
    assert (peer.host, peer.port, peer.rtcp_port) == ("::1", 4000, 4005)
    assert (peer.codec, peer.payload_type, peer.event_payload_type) == ("PCMA", 8, 101)
    assert peer.ptime == 30


def test_without_g711_the_offer_is_refused_488() -> None:
    phone = offer(BARESIP.replace("9 8 0 101 102", "9 101"))
    with pytest.raises(RemoteProtocolError) as info:
        answer(phone)
    assert info.value.status_hint == 488


def test_a_held_or_nameless_peer_has_no_address_and_rtcp_defaults_to_the_next_port() -> None:
    held = offer(BARESIP.replace("c=IN IP6 ::1", "c=IN IP4 0.0.0.0").replace("a=rtcp:4005\n", ""))
    peer = audio_peer(held, answer(held))
    assert peer is not None and peer.host is None and peer.rtcp_port == 4001
    named = offer(BARESIP.replace("c=IN IP6 ::1", "c=IN IP4 phone.example"))
    peer = audio_peer(named, answer(named))
    assert peer is not None and peer.host is None


def test_the_phone_answering_our_reoffer_fixes_the_payload_types() -> None:
    phone_answer = offer(BARESIP.replace("9 8 0 101 102", "0 101"))
    peer = audio_peer(phone_answer, phone_answer)
    assert peer is not None and (peer.codec, peer.payload_type) == ("PCMU", 0)

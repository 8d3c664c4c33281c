"""SDP parsing (RFC 4566) and offer/answer (RFC 3264): real offers, the direction table, rejections."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.sip.errors import RemoteProtocolError
from bridge.sip.sdp import (
    Direction,
    MediaDescription,
    Origin,
    SessionDescription,
    answer_direction,
    build_answer,
    build_offer,
    is_hold,
    parse_sdp,
)
from tests.conftest import CORPUS

BARESIP = (
    b"v=0\r\no=- 1376432021 2785432087 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\nm=audio 10110 RTP/AVP 111 9 0 8 101\r\nb=AS:128\r\n"
    b"a=rtpmap:111 opus/48000/2\r\na=fmtp:111 stereo=1;sprop-stereo=1\r\n"
    b"a=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
)
SIPP = (
    b"v=0\no=phone 53655765 2353687637 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\n"
    b"m=audio 6000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n"
)
AUDIO_VIDEO = (
    b"v=0\r\no=alice 1 1 IN IP6 2001:db8::1\r\ns=call\r\nc=IN IP6 2001:db8::1\r\nt=0 0\r\n"
    b"a=sendonly\r\n"
    b"m=audio 5004 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
    b"m=video 5006 RTP/AVPF 96 97\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 H263-1998/90000\r\n"
    b"a=recvonly\r\n"
    b"m=application 5008 UDP/BFCP *\r\n"
)
LOCAL = {"audio": 20000, "video": 20002}


def answer(offer: bytes, **kwargs: object) -> SessionDescription:
    return build_answer(
        parse_sdp(offer),
        local_address="192.0.2.10",
        ports=LOCAL,
        session_id=7,
        session_version=1,
        **kwargs,  # type: ignore[arg-type]
    )


def test_parse_a_softphone_offer() -> None:
    sd = parse_sdp(BARESIP)
    assert sd.origin.session_version == "2785432087"
    audio = sd.audio
    assert audio is not None
    assert (audio.port, audio.proto, audio.formats) == (
        10110,
        "RTP/AVP",
        ("111", "9", "0", "8", "101"),
    )
    assert audio.rtpmap("111") == "opus/48000/2"
    assert audio.fmtp("101") == "0-15"
    assert audio.attribute("ptime") == "20"
    assert audio.lines == (("b", "AS:128"),)
    assert sd.direction_of(audio) is Direction.SENDRECV


def test_lf_only_and_minimal_offer() -> None:
    sd = parse_sdp(SIPP)
    assert sd.connection == "IN IP4 127.0.0.1"
    assert sd.audio is not None and sd.audio.formats == ("0",)


def test_session_level_direction_applies_unless_overridden() -> None:
    sd = parse_sdp(AUDIO_VIDEO)
    audio, video = sd.audio, sd.video
    assert audio is not None and video is not None
    assert sd.direction_of(audio) is Direction.SENDONLY  # inherited from the session level
    assert sd.direction_of(video) is Direction.RECVONLY  # media level wins (RFC 4566 §6)


def test_rfc4475_sdp01_body() -> None:
    data = (CORPUS / "sdp01.dat").read_bytes()
    body = data.split(b"\r\n\r\n", 1)[1]
    sd = parse_sdp(body)
    assert sd.audio is not None
    assert sd.audio.formats  # and it is answered with a codec we take
    assert answer(body).audio is not None


def test_round_trip() -> None:
    for raw in (BARESIP, SIPP, AUDIO_VIDEO):
        sd = parse_sdp(raw)
        assert parse_sdp(sd.encode()) == sd


@pytest.mark.parametrize(
    ("offered", "local", "expected"),
    [
        (Direction.SENDRECV, Direction.SENDRECV, Direction.SENDRECV),
        (Direction.SENDONLY, Direction.SENDRECV, Direction.RECVONLY),
        (Direction.RECVONLY, Direction.SENDRECV, Direction.SENDONLY),
        (Direction.INACTIVE, Direction.SENDRECV, Direction.INACTIVE),
        (Direction.SENDRECV, Direction.SENDONLY, Direction.SENDONLY),  # the bridge's mute
        (Direction.SENDONLY, Direction.SENDONLY, Direction.INACTIVE),  # held and muted
        (Direction.RECVONLY, Direction.SENDONLY, Direction.SENDONLY),
        (Direction.SENDRECV, Direction.INACTIVE, Direction.INACTIVE),
    ],
)
def test_answer_direction_table(offered: Direction, local: Direction, expected: Direction) -> None:
    assert answer_direction(offered, local) is expected


def test_answer_follows_the_offer() -> None:
    sd = answer(BARESIP)
    audio = sd.audio
    assert audio is not None
    assert audio.port == 20000
    assert audio.formats == ("111", "9", "0", "8", "101")  # the offer's order, all known
    assert audio.fmtp("111") == "stereo=1;sprop-stereo=1"
    assert audio.direction is Direction.SENDRECV
    assert audio.attribute("ptime") == "20"
    assert sd.connection == "IN IP4 192.0.2.10"
    assert sd.origin == Origin("spaces-bridge", "7", "1", "IN", "IP4", "192.0.2.10")


def test_sendonly_offer_gets_recvonly_never_a_cached_sendrecv() -> None:
    held = BARESIP.replace(b"a=sendrecv", b"a=sendonly")
    assert answer(held).audio.direction is Direction.RECVONLY  # type: ignore[union-attr]
    assert answer(BARESIP).audio.direction is Direction.SENDRECV  # type: ignore[union-attr]


def test_answer_keeps_mline_count_and_rejects_what_it_cannot_use() -> None:
    sd = answer(AUDIO_VIDEO)
    assert [m.media for m in sd.media] == ["audio", "video", "application"]
    audio, video, app = sd.media
    assert audio.formats == ("0", "101") and audio.direction is Direction.RECVONLY
    assert video.formats == ("96",) and video.direction is Direction.SENDONLY
    assert video.proto == "RTP/AVPF"
    assert app.port == 0 and app.formats == ("*",)  # rejected, as RFC 3264 §6 says
    assert sd.connection == "IN IP4 192.0.2.10"


def test_no_common_audio_codec_is_488() -> None:
    offer = SIPP.replace(b"RTP/AVP 0\na=rtpmap:0 PCMU/8000", b"RTP/AVP 18\na=rtpmap:18 G729/8000")
    with pytest.raises(RemoteProtocolError) as info:
        answer(offer)
    assert info.value.status_hint == 488


def test_telephone_event_alone_is_no_audio() -> None:
    offer = SIPP.replace(
        b"RTP/AVP 0\na=rtpmap:0 PCMU/8000", b"RTP/AVP 101\na=rtpmap:101 telephone-event/8000"
    )
    with pytest.raises(RemoteProtocolError) as info:
        answer(offer)
    assert info.value.status_hint == 488


def test_secure_profile_is_rejected_not_faked() -> None:
    offer = SIPP.replace(b"RTP/AVP", b"RTP/SAVP")
    with pytest.raises(RemoteProtocolError) as info:
        answer(offer)
    assert info.value.status_hint == 488


def test_hold_detection() -> None:
    assert not is_hold(parse_sdp(BARESIP))
    assert is_hold(parse_sdp(BARESIP.replace(b"a=sendrecv", b"a=sendonly")))
    assert is_hold(parse_sdp(BARESIP.replace(b"a=sendrecv", b"a=inactive")))
    assert not is_hold(parse_sdp(BARESIP.replace(b"a=sendrecv", b"a=recvonly")))  # a mute
    assert is_hold(parse_sdp(SIPP.replace(b"c=IN IP4 127.0.0.1", b"c=IN IP4 0.0.0.0")))  # RFC 2543


def test_reoffer_keeps_formats_and_changes_only_direction_and_version() -> None:
    first = answer(BARESIP)
    again = build_offer(
        local_address="192.0.2.10",
        ports=LOCAL,
        session_id=7,
        session_version=2,
        previous=first,
        audio_direction=Direction.SENDONLY,
    )
    assert again.origin.session_version == "2"
    assert again.audio is not None and first.audio is not None
    assert again.audio.formats == first.audio.formats
    assert again.audio.direction is Direction.SENDONLY
    assert [a for a in again.audio.attributes if a[1] is None] == [("sendonly", None)]
    assert parse_sdp(again.encode()) == again


def test_initial_offer_without_previous() -> None:
    offer = build_offer(local_address="::1", ports=LOCAL, session_id=1, session_version=1)
    assert offer.connection == "IN IP6 ::1"
    assert offer.audio is not None and "0" in offer.audio.formats
    assert offer.audio.rtpmap("101") == "telephone-event/8000"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"o=- 1 1 IN IP4 1.2.3.4\r\n",  # no v=
        b"v=1\r\n",
        b"v=0\r\ns=-\r\nt=0 0\r\n",  # no o=
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nt=0 0\r\n",  # no s=
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\n",  # no t=
        b"v=0\r\no=- 1 1\r\ns=-\r\nt=0 0\r\n",  # short o=
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio x RTP/AVP 0\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 99999 RTP/AVP 0\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nnot a line\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n" + b"a=x\r\n" * 2000,
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n" + b"m=audio 1 RTP/AVP 0\r\n" * 65,
    ],
)
def test_malformed_is_400(data: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_sdp(data)
    assert info.value.status_hint == 400


@given(st.binary(max_size=600))
def test_any_bytes_parse_or_raise_the_documented_error(data: bytes) -> None:
    try:
        parse_sdp(b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n" + data)
        parse_sdp(data)
    except RemoteProtocolError:
        pass


_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8)
_media = st.builds(
    MediaDescription,
    media=st.sampled_from(["audio", "video", "application"]),
    port=st.integers(0, 65535),
    proto=st.sampled_from(["RTP/AVP", "RTP/AVPF", "UDP/BFCP"]),
    formats=st.lists(st.sampled_from(["0", "8", "96", "101"]), min_size=1, max_size=4).map(tuple),
    attributes=st.lists(
        st.tuples(_token, st.none() | st.sampled_from(["0 PCMU/8000", "1", "x y"])), max_size=4
    ).map(tuple),
)


@given(
    st.builds(
        SessionDescription,
        origin=st.builds(
            Origin,
            _token,
            st.integers(0, 2**63).map(str),
            st.integers(0, 2**63).map(str),
            st.just("IN"),
            st.just("IP4"),
            st.just("198.51.100.7"),
        ),
        name=_token,
        connection=st.none() | st.just("IN IP4 198.51.100.7"),
        attributes=st.lists(st.tuples(_token, st.none() | _token), max_size=3).map(tuple),
        media=st.lists(_media, max_size=4).map(tuple),
    )
)
def test_generated_descriptions_round_trip(sd: SessionDescription) -> None:
    assert parse_sdp(sd.encode()) == sd

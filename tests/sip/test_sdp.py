"""SDP parsing (RFC 4566) and offer/answer (RFC 3264): real offers, the direction table, rejections."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.sip.errors import RemoteProtocolError
from bridge.sip.offer_answer import (
    answer_direction,
    build_answer,
    build_offer,
    is_hold,
    offer_shape,
)
from bridge.sip.sdp import (
    MAX_LINES,
    MAX_MEDIA,
    Direction,
    MediaDescription,
    Origin,
    SessionDescription,
    parse_sdp,
    with_direction,
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
H264 = (
    b"v=0\r\no=- 5 5 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 8\r\n"
    b"m=video 4002 RTP/AVP 99 34\r\na=rtpmap:99 H264/90000\r\n"
    b"a=fmtp:99 profile-level-id=42e01f;packetization-mode=1\r\n"
)
HEAD = b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n"
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


def audio_of(sd: SessionDescription) -> MediaDescription:
    assert sd.audio is not None
    return sd.audio


# -- parsing ---------------------------------------------------------------------------------------


def test_parse_a_softphone_offer() -> None:
    sd = parse_sdp(BARESIP)
    assert sd.origin.session_version == "2785432087"
    audio = audio_of(sd)
    assert (audio.port, audio.proto, audio.formats) == (
        10110,
        "RTP/AVP",
        ("111", "9", "0", "8", "101"),
    )
    assert audio.rtpmap("111") == "opus/48000/2"
    assert audio.fmtp("101") == "0-15"
    assert audio.attribute("ptime") == "20"
    assert audio.attribute("sendrecv") == ""
    assert audio.attribute("rtcp") is None
    assert audio.lines == (("b", "AS:128"),)
    assert audio.direction is Direction.SENDRECV
    assert sd.video is None


def test_lf_only_trailing_whitespace_and_minimal_offer() -> None:
    sd = parse_sdp(SIPP.replace(b"s=-\n", b"s=-  \t\n\n"))
    assert sd.connection == "IN IP4 127.0.0.1"
    assert sd.name == "-"
    assert audio_of(sd).formats == ("0",)
    assert audio_of(sd).direction is Direction.SENDRECV  # no attribute anywhere: the default


def test_session_level_direction_applies_unless_overridden() -> None:
    sd = parse_sdp(AUDIO_VIDEO)
    audio, video = sd.audio, sd.video
    assert audio is not None and video is not None
    assert sd.direction is Direction.SENDONLY
    assert audio.own_direction is None
    assert audio.direction is Direction.SENDONLY  # inherited from the session level
    assert video.direction is Direction.RECVONLY  # media level wins (RFC 4566 §6)
    assert sd.direction_of(audio) is Direction.SENDONLY
    # Built by hand, the inheritance is the same as parsed.
    built = SessionDescription(
        sd.origin, attributes=(("inactive", None),), media=(MediaDescription("audio", 1, "x", ()),)
    )
    assert built.media[0].direction is Direction.INACTIVE


def test_rfc4475_sdp01_body() -> None:
    data = (CORPUS / "sdp01.dat").read_bytes()
    body = data.split(b"\r\n\r\n", 1)[1]
    sd = parse_sdp(body)
    assert audio_of(sd).formats == ("0", "12")
    assert sd.video is not None and sd.video.rtpmap("31") == "LPC"
    reply = answer(body)
    assert audio_of(reply).formats == ("0",)  # 12 (QCELP) is not ours
    assert [m.port for m in reply.media] == [20000, 0]  # the "LPC" video is rejected


def test_unknown_lines_and_attributes() -> None:
    sd = parse_sdp(HEAD + b"x=ignored\r\na=foo:bar baz\r\nm=audio 1 RTP/AVP 0\r\nq=also\r\na=x\r\n")
    assert sd.attributes == (("foo", "bar baz"),)  # unknown attribute kept (RFC 4566 §5.13)
    assert audio_of(sd).attributes == (("x", None),)
    assert all(kind != "x" for kind, _ in sd.lines)


def test_port_count_and_rejected_stream() -> None:
    sd = parse_sdp(HEAD + b"m=audio 49170/2 RTP/AVP 0\r\nm=video 0 RTP/AVP 31\r\n")
    audio, video = sd.media
    assert (audio.port, audio.port_count) == (49170, 2)
    assert video.rejected and not audio.rejected
    assert b"m=audio 49170/2 RTP/AVP 0\r\n" in sd.encode()


def test_non_utf8_bytes_round_trip_unchanged() -> None:
    raw = HEAD.replace(b"s=-", b"s=caf\xe9 \xff") + b"m=audio 1 RTP/AVP 0\r\n"
    sd = parse_sdp(raw)
    assert sd.encode() == raw


def test_encode_writes_the_rfc_4566_order() -> None:
    sd = SessionDescription(
        Origin("-", "1", "2", "IN", "IP4", "192.0.2.1"),
        name="n",
        connection="IN IP4 192.0.2.1",
        attributes=(("recvonly", None),),
        media=(
            MediaDescription(
                "audio",
                5000,
                "RTP/AVP",
                ("0",),
                connection="IN IP4 192.0.2.2",
                attributes=(("rtpmap", "0 PCMU/8000"),),
                lines=(("b", "AS:64"), ("i", "voice")),
            ),
        ),
        lines=(
            ("k", "prompt"),
            ("z", "0 0"),
            ("t", "1 2"),
            ("r", "7d 1h 0"),
            ("t", "3 4"),
            ("b", "CT:128"),
            ("i", "info"),
        ),
    )
    assert sd.encode() == (
        b"v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=n\r\ni=info\r\nc=IN IP4 192.0.2.1\r\nb=CT:128\r\n"
        b"t=1 2\r\nr=7d 1h 0\r\nt=3 4\r\nz=0 0\r\nk=prompt\r\na=recvonly\r\n"
        b"m=audio 5000 RTP/AVP 0\r\ni=voice\r\nc=IN IP4 192.0.2.2\r\nb=AS:64\r\n"
        b"a=rtpmap:0 PCMU/8000\r\n"
    )
    again = parse_sdp(sd.encode())  # parsed lines come in the canonical order
    assert again.lines == (
        ("i", "info"),
        ("b", "CT:128"),
        *sd.lines[2:5],
        ("z", "0 0"),
        sd.lines[0],
    )
    assert again.media[0].lines == (("i", "voice"), ("b", "AS:64"))
    assert again.encode() == sd.encode()


def test_round_trip() -> None:
    for raw in (BARESIP, SIPP, AUDIO_VIDEO, H264):
        sd = parse_sdp(raw)
        assert parse_sdp(sd.encode()) == sd
    assert parse_sdp(BARESIP).encode() == BARESIP  # canonical input comes back byte for byte


def test_limits_are_exact() -> None:
    media = HEAD + b"m=audio 1 RTP/AVP 0\r\n" * MAX_MEDIA
    assert len(parse_sdp(media).media) == MAX_MEDIA
    lines = HEAD + b"a=x\r\n" * (MAX_LINES - 4)
    assert len(parse_sdp(lines).attributes) == MAX_LINES - 4
    assert parse_sdp(lines + b"\r\n\r\n") is not None  # trailing blank lines do not count
    with pytest.raises(RemoteProtocolError):
        parse_sdp(lines + b"a=y\r\n")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\r\n\r\n",
        b"o=- 1 1 IN IP4 1.2.3.4\r\n",  # no v=
        b"v=1\r\n",
        b"v=0\r\ns=-\r\nt=0 0\r\n",  # no o=
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nt=0 0\r\n",  # no s=
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\n",  # no t=
        b"v=0\r\no=- 1 1\r\ns=-\r\nt=0 0\r\n",  # short o=
        HEAD + b"c=IN IP4\r\n",
        HEAD + b"a=\r\n",
        HEAD + b"a=:value\r\n",
        HEAD + b"m=audio RTP/AVP\r\n",
        HEAD + b"m=audio x RTP/AVP 0\r\n",
        HEAD + b"m=audio 99999 RTP/AVP 0\r\n",
        HEAD + b"m=audio 1/x RTP/AVP 0\r\n",
        HEAD + "m=audio ² RTP/AVP 0\r\n".encode(),  # a digit to isdigit(), not to int()
        HEAD + "m=audio 1/² RTP/AVP 0\r\n".encode(),
        HEAD + b"not a line\r\n",
        HEAD + b"a =x\r\n",  # no whitespace around "=" (RFC 4566 §5)
        HEAD + "é=x\r\n".encode(),
        HEAD + b"a=x\ra=y\r\n",  # bare CR inside a line
        HEAD + b"a=x\x00\r\n",
        HEAD + b"a=x\r\n" * 2000,
        HEAD + b"m=audio 1 RTP/AVP 0\r\n" * (MAX_MEDIA + 1),
    ],
)
def test_malformed_is_400(data: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_sdp(data)
    assert info.value.status_hint == 400


# -- offer/answer ----------------------------------------------------------------------------------


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
        (Direction.INACTIVE, Direction.SENDONLY, Direction.INACTIVE),
        (Direction.SENDRECV, Direction.RECVONLY, Direction.RECVONLY),
        (Direction.SENDRECV, Direction.INACTIVE, Direction.INACTIVE),
    ],
)
def test_answer_direction_table(offered: Direction, local: Direction, expected: Direction) -> None:
    assert answer_direction(offered, local) is expected
    assert answer_direction(offered) is answer_direction(offered, Direction.SENDRECV)


def test_answer_follows_the_offer() -> None:
    sd = answer(BARESIP, username="bridge")
    audio = audio_of(sd)
    assert audio.port == 20000
    assert audio.formats == ("111", "9", "0", "8", "101")  # the offer's order, all known
    assert audio.fmtp("111") == "stereo=1;sprop-stereo=1"
    assert audio.fmtp("101") == "0-15"  # telephone-event keeps the offered PT and fmtp
    assert audio.direction is Direction.SENDRECV
    assert audio.attribute("ptime") == "20"
    assert audio.lines == ()  # the offer's b= is not ours to repeat
    assert sd.connection == "IN IP4 192.0.2.10"
    assert sd.origin == Origin("bridge", "7", "1", "IN", "IP4", "192.0.2.10")
    assert answer(BARESIP).origin.username == "-"  # RFC 4566 §5.2: no user named
    assert sd.name == "-" and sd.lines == (("t", "0 0"),)


def test_answer_over_ipv6_and_static_codecs_without_rtpmap() -> None:
    sd = build_answer(
        parse_sdp(HEAD + b"m=audio 1 RTP/AVP 18 8 0\r\n"),
        local_address="2001:db8::10",
        ports=LOCAL,
        session_id=1,
        session_version=1,
    )
    assert sd.connection == "IN IP6 2001:db8::10" and sd.origin.addrtype == "IP6"
    assert audio_of(sd).formats == ("8", "0")  # G729 (18) is not ours
    assert audio_of(sd).attributes == (("sendrecv", None),)


def test_sendonly_offer_gets_recvonly_never_a_cached_sendrecv() -> None:
    held = BARESIP.replace(b"a=sendrecv", b"a=sendonly")
    assert audio_of(answer(held)).direction is Direction.RECVONLY
    assert audio_of(answer(BARESIP)).direction is Direction.SENDRECV


def test_local_direction_narrows_the_answer() -> None:
    muted = answer(BARESIP, audio_direction=Direction.SENDONLY)
    assert audio_of(muted).direction is Direction.SENDONLY
    held_and_muted = answer(
        BARESIP.replace(b"a=sendrecv", b"a=sendonly"), audio_direction=Direction.SENDONLY
    )
    assert audio_of(held_and_muted).direction is Direction.INACTIVE


def test_answer_keeps_mline_count_and_rejects_what_it_cannot_use() -> None:
    sd = answer(AUDIO_VIDEO)
    assert [m.media for m in sd.media] == ["audio", "video", "application"]
    audio, video, app = sd.media
    assert audio.formats == ("0", "101") and audio.direction is Direction.RECVONLY
    assert video.formats == ("96",) and video.direction is Direction.SENDONLY
    assert video.rtpmap("96") == "VP8/90000" and video.rtpmap("97") is None
    assert video.proto == "RTP/AVPF" and video.port == 20002
    assert app.port == 0 and app.formats == ("*",) and app.proto == "UDP/BFCP"  # RFC 3264 §6
    assert parse_sdp(sd.encode()) == sd


def test_h264_video_keeps_its_fmtp() -> None:
    video = answer(H264).video
    assert video is not None
    assert video.formats == ("99",)
    assert video.fmtp("99") == "profile-level-id=42e01f;packetization-mode=1"


def test_streams_offered_with_port_zero_or_twice_are_rejected() -> None:
    offer = (
        HEAD
        + b"m=video 0 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"
        + b"m=audio 1 RTP/AVP 0\r\nm=audio 2 RTP/AVP 8\r\n"
    )
    sd = answer(offer)
    assert [(m.media, m.port, m.formats) for m in sd.media] == [
        ("video", 0, ("96",)),
        ("audio", 20000, ("0",)),
        ("audio", 0, ("8",)),  # one anchor port per media type
    ]


def test_media_without_a_local_port_is_rejected() -> None:
    sd = build_answer(
        parse_sdp(H264),
        local_address="192.0.2.10",
        ports={"audio": 1},
        session_id=1,
        session_version=1,
    )
    assert [m.port for m in sd.media] == [1, 0]


@pytest.mark.parametrize(
    "offer",
    [
        SIPP.replace(b"RTP/AVP 0\na=rtpmap:0 PCMU/8000", b"RTP/AVP 18\na=rtpmap:18 G729/8000"),
        SIPP.replace(
            b"RTP/AVP 0\na=rtpmap:0 PCMU/8000", b"RTP/AVP 101\na=rtpmap:101 telephone-event/8000"
        ),  # telephone-event alone carries no voice
        SIPP.replace(b"RTP/AVP", b"RTP/SAVP"),  # secure profiles are refused, not faked
        SIPP.replace(b"m=audio 6000", b"m=audio 0"),
        SIPP.replace(b"m=audio", b"m=video"),
        HEAD,  # no m-line at all
    ],
)
def test_no_usable_audio_is_488(offer: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        answer(offer)
    assert info.value.status_hint == 488


def test_rfc2543_hold_is_answered_recvonly() -> None:
    offer = SIPP.replace(b"c=IN IP4 127.0.0.1", b"c=IN IP4 0.0.0.0")
    assert audio_of(answer(offer)).direction is Direction.RECVONLY


def test_hold_detection() -> None:
    assert not is_hold(parse_sdp(BARESIP))
    assert is_hold(parse_sdp(BARESIP.replace(b"a=sendrecv", b"a=sendonly")))
    assert is_hold(parse_sdp(BARESIP.replace(b"a=sendrecv", b"a=inactive")))
    assert not is_hold(parse_sdp(BARESIP.replace(b"a=sendrecv", b"a=recvonly")))  # a mute
    assert is_hold(parse_sdp(SIPP.replace(b"c=IN IP4 127.0.0.1", b"c=IN IP4 0.0.0.0")))  # RFC 2543
    media_level = SIPP.replace(b"a=rtpmap", b"c=IN IP4 0.0.0.0\na=rtpmap")
    assert is_hold(parse_sdp(media_level))
    assert is_hold(parse_sdp(AUDIO_VIDEO))  # session-level sendonly
    assert not is_hold(parse_sdp(HEAD + b"m=audio 0 RTP/AVP 0\r\na=sendonly\r\n"))  # rejected


def test_reoffer_keeps_formats_and_changes_only_direction_and_version() -> None:
    first = answer(AUDIO_VIDEO)
    again = build_offer(
        local_address="192.0.2.10",
        ports=LOCAL,
        session_id=7,
        session_version=2,
        previous=first.media,
        audio_direction=Direction.SENDONLY,
    )
    assert again.origin.session_version == "2"
    assert again.origin.session_id == first.origin.session_id
    assert [(m.media, m.port, m.proto, m.formats) for m in again.media] == [
        (m.media, m.port, m.proto, m.formats) for m in first.media
    ]
    audio, video, app = again.media
    assert audio.direction is Direction.SENDONLY
    assert [a for a in audio.attributes if a[1] is None] == [("sendonly", None)]
    assert audio.attributes[:-1] == audio_of(first).attributes[:-1]  # rtpmaps unchanged
    assert video.direction is Direction.SENDRECV
    assert app == first.media[2]  # rejected stays rejected
    assert parse_sdp(again.encode()) == again
    unmuted = build_offer(
        local_address="192.0.2.10",
        ports=LOCAL,
        session_id=7,
        session_version=3,
        previous=again.media,
    )
    assert audio_of(unmuted).direction is Direction.SENDRECV


def test_a_reoffer_from_the_shape_equals_one_from_the_media_and_alike_calls_share_a_shape() -> None:
    first = answer(AUDIO_VIDEO)
    other = build_answer(
        parse_sdp(AUDIO_VIDEO),
        local_address="192.0.2.10",
        ports={"audio": 30000, "video": 30002},
        session_id=9,
        session_version=1,
    )
    muted = answer(AUDIO_VIDEO, audio_direction=Direction.RECVONLY)
    shape = offer_shape(first.media)
    assert shape == offer_shape(other.media) == offer_shape(muted.media)
    assert hash(shape) == hash(offer_shape(other.media))
    assert shape[2] == first.media[2]  # the rejected stream as it was, port 0
    for direction in Direction:
        offers = [
            build_offer(
                local_address="192.0.2.10",
                ports=LOCAL,
                session_id=7,
                session_version=2,
                previous=previous,
                audio_direction=direction,
            ).encode()
            for previous in (first.media, shape)
        ]
        assert offers[0] == offers[1]


def test_initial_offer_without_previous() -> None:
    offer = build_offer(local_address="::1", ports=LOCAL, session_id=1, session_version=1)
    assert offer.connection == "IN IP6 ::1"
    audio = audio_of(offer)
    assert audio.formats == ("0", "8", "9", "111", "101")
    assert audio.rtpmap("111") == "opus/48000/2"
    assert audio.rtpmap("101") == "telephone-event/8000" and audio.fmtp("101") == "0-16"
    assert audio.direction is Direction.SENDRECV and audio.port == 20000
    assert len(offer.media) == 1
    # The phone answers our offer; our own offer is acceptable to us.
    assert (
        audio_of(
            build_answer(offer, local_address="::1", ports=LOCAL, session_id=1, session_version=1)
        ).formats
        == audio.formats
    )


def test_with_direction_replaces_any_direction() -> None:
    attributes = (("sendrecv", None), ("ptime", "20"), ("inactive", None))
    assert with_direction(attributes, Direction.RECVONLY) == (("ptime", "20"), ("recvonly", None))


# -- properties ------------------------------------------------------------------------------------


def _parse_or_status(data: bytes) -> SessionDescription | int:
    """The parsed description, or the status hint of the only error parsing may raise."""
    try:
        return parse_sdp(data)
    except RemoteProtocolError as exc:
        return exc.status_hint


def _answer_or_status(offer: SessionDescription) -> SessionDescription | int:
    try:
        return build_answer(
            offer, local_address="192.0.2.1", ports=LOCAL, session_id=1, session_version=1
        )
    except RemoteProtocolError as exc:
        return exc.status_hint


@given(st.binary(max_size=600))
def test_any_bytes_parse_or_raise_the_documented_error(data: bytes) -> None:
    for raw in (HEAD + data, data, HEAD + b"m=audio 1 RTP/AVP 0\r\n" + data):
        sd = _parse_or_status(raw)
        if isinstance(sd, int):
            assert sd == 400
            continue
        assert parse_sdp(sd.encode()) == sd
        reply = _answer_or_status(sd)
        assert reply == 488 or isinstance(reply, SessionDescription)
        is_hold(sd)


_SDP_LINES = st.lists(
    st.sampled_from(
        [
            b"a=sendonly",
            b"a=rtpmap:0 PCMU/8000",
            b"m=audio 1 RTP/AVP 0 8",
            b"m=video 0 RTP/AVP 96",
            b"c=IN IP4 0.0.0.0",
            b"b=AS:64",
            b"a=",
            b"x=1",
            b"m=audio 1/2 RTP/SAVP 0",
            b"a=fmtp:96 a=b",
            b"c=IN",
            b"r=1 2 3",
        ]
    )
    | st.binary(max_size=20),
    max_size=20,
)


@given(_SDP_LINES, st.sampled_from([b"\r\n", b"\n"]))
def test_sdp_like_lines_parse_or_raise_the_documented_error(lines: list[bytes], end: bytes) -> None:
    data = HEAD + end.join(lines)
    sd = _parse_or_status(data)
    if isinstance(sd, int):
        assert sd == 400
    else:
        assert parse_sdp(sd.encode()) == sd
        assert isinstance(_answer_or_status(sd), SessionDescription | int)


def _session_rank(line: tuple[str, str]) -> int:
    # Generated descriptions list their lines in the RFC 4566 §5 order, as encode() writes them
    # (t and r share a rank: each r= belongs to the t= before it).
    return "iuepbttzk".index(line[0].replace("r", "t"))


_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8)
_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs", "Zs", "Cc", "Zl", "Zp"]), max_size=12
)
_attribute = st.tuples(_token, st.none() | st.sampled_from(["0 PCMU/8000", "1", "x y"]) | _text)
_media = st.builds(
    MediaDescription,
    media=st.sampled_from(["audio", "video", "application"]),
    port=st.integers(0, 65535),
    proto=st.sampled_from(["RTP/AVP", "RTP/AVPF", "UDP/BFCP"]),
    formats=st.lists(st.sampled_from(["0", "8", "96", "101"]), min_size=1, max_size=4).map(tuple),
    port_count=st.none() | st.integers(1, 8),
    connection=st.none() | st.just("IN IP4 198.51.100.8"),
    attributes=st.lists(_attribute, max_size=4).map(tuple),
    lines=st.lists(st.tuples(st.sampled_from("ibk"), _text), max_size=3).map(
        lambda lines: tuple(sorted(lines, key=lambda line: "ibk".index(line[0])))
    ),
)


@given(
    st.builds(
        SessionDescription,
        origin=st.builds(
            Origin,
            _token,
            st.integers(0, 2**64).map(str),
            st.integers(0, 2**64).map(str),
            st.just("IN"),
            st.sampled_from(["IP4", "IP6"]),
            st.sampled_from(["198.51.100.7", "2001:db8::7"]),
        ),
        name=_text,
        connection=st.none() | st.just("IN IP4 198.51.100.7"),
        attributes=st.lists(_attribute, max_size=3).map(tuple),
        media=st.lists(_media, max_size=4).map(tuple),
        lines=st.lists(st.tuples(st.sampled_from("iuepbrzk"), _text), max_size=3).map(
            lambda lines: tuple(sorted([("t", "0 0"), *lines], key=_session_rank))
        ),
    )
)
def test_generated_descriptions_round_trip(sd: SessionDescription) -> None:
    again = parse_sdp(sd.encode())
    assert again == sd
    assert [m.direction for m in again.media] == [m.direction for m in sd.media]

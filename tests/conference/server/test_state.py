"""The conference rules, without I/O: tables of cases, and Hypothesis over action sequences."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.conference.server.config import SpaceConfig
from bridge.conference.server.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    GuestDenied,
    MeetingEnded,
    NotFound,
    PreventUnmuting,
)
from bridge.conference.server.model import Caller, Outcome, Settings
from bridge.conference.server.state import Conference
from bridge.conference.wire import Category, GuestPolicy, Hand, Role

MOD = Caller("console", Role.MODERATOR)
MOD2 = Caller("chair", Role.MODERATOR)
BRIDGE = Caller("bridge", Role.BRIDGE)
BRIDGE2 = Caller("bridge2", Role.BRIDGE)
ALICE = Caller("alice", Role.MEMBER)
BOB = Caller("bob", Role.MEMBER)
GINA = Caller("gina", Role.GUEST)

TS = Category.TRACKSSTATUS
REQ = Category.REQUEST_TRACKSSTATUS
UPD = Category.ATTENDEE_UPDATED


class World:
    """A conference with one space ``s`` whose meeting is started, deterministic ids and clock."""

    def __init__(self, **settings: object) -> None:
        counter = itertools.count(1)
        self.clock = 1_700_000_000.0
        # The settings come as objects, which mypy cannot match to the fields they replace.
        self.conf = Conference(
            [SpaceConfig("s", "Space", replace(Settings(), **settings))],  # type: ignore[arg-type]
            ids=lambda: f"id{next(counter)}",
            now=lambda: self.clock,
        )
        body = self.conf.active_meeting(MOD, "s").body
        assert body is not None
        self.meeting: str = body["meetingId"]

    def join(self, caller: Caller, name: str = "x", **kw: object) -> str:
        kw.setdefault("attendee_type", "phone" if caller.role is Role.BRIDGE else "web")
        # The options come as objects, which mypy cannot match to join's keyword parameters.
        out = self.conf.join(caller, "s", self.meeting, display_name=name, **kw)  # type: ignore[arg-type]
        assert out.body is not None
        attendee_id: str = out.body["attendeeId"]
        return attendee_id

    def get(self, attendee_id: str) -> dict[str, object]:
        return next(a.to_json() for a in self.conf.attendees("s") if a.id == attendee_id)

    def audio(self, attendee_id: str) -> bool:
        media_state = self.get(attendee_id)["mediaState"]
        assert isinstance(media_state, dict)
        return bool(media_state["audio"])

    def media(
        self,
        caller: Caller,
        attendee_id: str,
        *,
        audio: bool | None = None,
        video: bool | None = None,
        held: bool | None = None,
    ) -> Outcome:
        a = self.get(attendee_id)
        return self.conf.set_media(
            caller,
            "s",
            self.meeting,
            str(a["attendeeType"]),
            attendee_id,
            audio=audio,
            video=video,
            held=held,
        )

    def raise_and_accept(self, owner: Caller, attendee_id: str) -> None:
        self.conf.raise_hand(owner, "s", self.meeting, attendee_id=attendee_id)
        self.conf.accept_hand(MOD, "s", self.meeting, attendee_id, None)


def cats(outcome: Outcome) -> list[str]:
    return [str(e.category) for e in outcome.events]


# ---------------------------------------------------------------- media state

# (prevent, actor, target owner, target role, hand accepted, starts unmuted, change) -> events or error
MEDIA_CASES = [
    ("self unmute", False, ALICE, ALICE, None, False, False, True, [TS, UPD]),
    ("self mute", False, ALICE, ALICE, None, False, True, False, [TS, UPD]),
    ("self unmute prevented", True, ALICE, ALICE, None, False, False, True, PreventUnmuting),
    ("self unmute, hand accepted", True, ALICE, ALICE, None, True, False, True, [TS, UPD]),
    (
        "moderator attendee unmutes",
        True,
        BRIDGE,
        BRIDGE,
        Role.MODERATOR,
        False,
        False,
        True,
        [TS, UPD],
    ),
    ("admin mute", False, MOD, ALICE, None, False, True, False, [TS, UPD, REQ]),
    ("admin mute of muted", False, MOD, ALICE, None, False, False, False, [REQ]),
    ("admin unmute", False, MOD, ALICE, None, False, False, True, [TS, UPD, REQ]),
    ("admin unmute prevented", True, MOD, ALICE, None, False, False, True, PreventUnmuting),
    ("other member", False, BOB, ALICE, None, False, True, False, Forbidden),
    ("other bridge", False, BRIDGE2, BRIDGE, None, False, True, False, Forbidden),
    ("bridge for a web user", False, BRIDGE, ALICE, None, False, True, False, Forbidden),
    ("unchanged self report", False, ALICE, ALICE, None, False, True, True, []),
]


@pytest.mark.parametrize(
    ("prevent", "actor", "owner", "role", "accepted", "unmuted", "audio", "expected"),
    [case[1:] for case in MEDIA_CASES],
    ids=[case[0] for case in MEDIA_CASES],
)
def test_media_state_rules(  # noqa: PLR0917  (one parameter per table column)
    prevent: bool,
    actor: Caller,
    owner: Caller,
    role: Role | None,
    accepted: bool,
    unmuted: bool,
    audio: bool,
    expected: list[Category] | type[ApiError],
) -> None:
    w = World()
    a = w.join(owner, role=role)
    w.media(owner, a, audio=unmuted)
    if accepted:
        w.raise_and_accept(owner, a)
    if prevent:
        w.conf.update_settings(MOD, "s", prevent_unmuting=True)
    if isinstance(expected, list):
        out = w.media(actor, a, audio=audio)
        assert cats(out) == [str(c) for c in expected]
        assert w.audio(a) is audio
    else:
        with pytest.raises(expected):
            w.media(actor, a, audio=audio)


def test_admin_mute_clears_an_accepted_hand() -> None:
    w = World(prevent_unmuting=True)
    a = w.join(ALICE)
    w.raise_and_accept(ALICE, a)
    w.media(ALICE, a, audio=True)
    w.media(MOD, a, audio=False)
    assert w.get(a)["hand"] == "lowered"
    with pytest.raises(PreventUnmuting):
        w.media(ALICE, a, audio=True)


def test_waiting_attendee_has_no_media() -> None:
    w = World(guest_policy=GuestPolicy.ASK_MODERATOR)
    g = w.join(GINA)
    assert not w.audio(g)
    with pytest.raises(Conflict):
        w.media(GINA, g, audio=True)


def test_unknown_attendee_or_type_is_404() -> None:
    w = World()
    a = w.join(ALICE)
    with pytest.raises(NotFound):
        w.conf.set_media(ALICE, "s", w.meeting, "phone", a, audio=False)
    with pytest.raises(NotFound):
        w.conf.set_media(ALICE, "s", w.meeting, "web", "nobody", audio=False)
    with pytest.raises(NotFound):
        w.conf.set_media(ALICE, "nospace", w.meeting, "web", a, audio=False)


# ---------------------------------------------------------------------- roles

# (caller, guest flag, requested role, policy) -> (role, admitted) or error
JOIN_CASES = [
    ("moderator token", MOD, False, None, GuestPolicy.ASK_MODERATOR, ("moderator", True)),
    ("member token", ALICE, False, None, GuestPolicy.ASK_MODERATOR, ("member", True)),
    ("guest token waits", GINA, False, None, GuestPolicy.ASK_MODERATOR, ("guest", False)),
    ("guest token accepted", GINA, False, None, GuestPolicy.ALWAYS_ACCEPT, ("guest", True)),
    ("guest token denied", GINA, False, None, GuestPolicy.ALWAYS_DENY, GuestDenied),
    ("bridge phone", BRIDGE, False, None, GuestPolicy.ASK_MODERATOR, ("member", True)),
    ("bridge guest", BRIDGE, True, None, GuestPolicy.ASK_MODERATOR, ("guest", False)),
    (
        "bridge moderator",
        BRIDGE,
        False,
        Role.MODERATOR,
        GuestPolicy.ASK_MODERATOR,
        ("moderator", True),
    ),
    (
        "flagged moderator waits",
        BRIDGE,
        True,
        Role.MODERATOR,
        GuestPolicy.ASK_MODERATOR,
        ("moderator", False),
    ),
    ("member flagged guest denied", ALICE, True, None, GuestPolicy.ALWAYS_DENY, GuestDenied),
    ("member escalates", ALICE, False, Role.MODERATOR, GuestPolicy.ALWAYS_ACCEPT, Forbidden),
    ("bridge role", BRIDGE, False, Role.BRIDGE, GuestPolicy.ALWAYS_ACCEPT, BadRequest),
]


@pytest.mark.parametrize(
    ("caller", "guest", "role", "policy", "expected"),
    [case[1:] for case in JOIN_CASES],
    ids=[case[0] for case in JOIN_CASES],
)
def test_join_roles_and_guest_policy(
    caller: Caller,
    guest: bool,
    role: Role | None,
    policy: GuestPolicy,
    expected: tuple[str, bool] | type[ApiError],
) -> None:
    w = World(guest_policy=policy)
    if isinstance(expected, tuple):
        a = w.get(w.join(caller, guest=guest, role=role))
        assert (a["role"], a["admitted"]) == expected
    else:
        with pytest.raises(expected):
            w.join(caller, guest=guest, role=role)


@pytest.mark.parametrize(
    ("settings", "caller", "role", "muted"),
    [
        ({"mute_on_entry": True}, ALICE, None, True),
        ({"mute_on_entry": True}, BRIDGE, Role.MODERATOR, True),
        ({"prevent_unmuting": True}, ALICE, None, True),
        ({"prevent_unmuting": True}, BRIDGE, Role.MODERATOR, False),
        ({}, ALICE, None, False),
    ],
)
def test_mute_on_entry(
    settings: dict[str, bool], caller: Caller, role: Role | None, muted: bool
) -> None:
    w = World(**settings)
    out = w.conf.join(caller, "s", w.meeting, attendee_type="web", display_name="x", role=role)
    assert out.body is not None
    assert out.body["mediaState"] == {"audio": not muted, "video": False}
    expected = [Category.ATTENDEE_JOINED, REQ] if muted else [Category.ATTENDEE_JOINED]
    assert cats(out) == expected
    if muted:
        assert out.events[1].content == {
            "attendeeId": out.body["attendeeId"],
            "audio": False,
            "video": False,
        }


def test_leave_by_owner_or_moderator_only() -> None:
    w = World()
    a = w.join(ALICE)
    b = w.join(BOB)
    with pytest.raises(Forbidden):
        w.conf.leave(BOB, "s", w.meeting, "web", a)
    assert cats(w.conf.leave(ALICE, "s", w.meeting, "web", a)) == [Category.ATTENDEE_LEFT]
    assert cats(w.conf.leave(MOD, "s", w.meeting, "web", b)) == [Category.ATTENDEE_LEFT]
    with pytest.raises(NotFound):
        w.conf.leave(MOD, "s", w.meeting, "web", b)


# ------------------------------------------------------------------- mute all


def test_mute_all_spares_initiator_and_exclusions_and_commands_legacy_only() -> None:
    w = World(prevent_unmuting=False)
    mod = w.join(MOD)
    legacy = w.join(BRIDGE)
    modern = w.join(BRIDGE, version="1.1")
    spared = w.join(ALICE)
    accepted = w.join(BOB, version="1.1")
    w.raise_and_accept(BOB, accepted)
    out = w.conf.mute_all(MOD, "s", w.meeting, exclusions=[spared, "gone"])
    assert out.body == {"muted": [legacy, modern, accepted]}
    assert cats(out) == [
        Category.ALL_MUTING,
        *[TS, UPD] * 3,
        Category.ALL_MUTED,
        REQ,
    ]
    assert out.events[0].content == {"initiator": mod}
    assert out.events[-2].content == {"exclude": [{"attendeeId": mod}, {"attendeeId": spared}]}
    assert out.events[-1].content == {"attendeeId": legacy, "audio": False, "video": False}
    assert w.audio(mod) and w.audio(spared)
    assert not any(w.audio(x) for x in (legacy, modern, accepted))
    assert w.get(accepted)["hand"] == "lowered"


def test_mute_all_by_bridge_needs_its_own_moderator_attendee() -> None:
    w = World()
    phone_mod = w.join(BRIDGE, role=Role.MODERATOR)
    phone = w.join(BRIDGE)
    other_mod = w.join(BRIDGE2, role=Role.MODERATOR)
    with pytest.raises(Forbidden):
        w.conf.mute_all(BRIDGE, "s", w.meeting)
    with pytest.raises(Forbidden):
        w.conf.mute_all(BRIDGE, "s", w.meeting, initiator=phone)
    with pytest.raises(Forbidden):
        w.conf.mute_all(BRIDGE, "s", w.meeting, initiator=other_mod)
    with pytest.raises(Forbidden):
        w.conf.mute_all(ALICE, "s", w.meeting)
    out = w.conf.mute_all(BRIDGE, "s", w.meeting, initiator=phone_mod)
    assert out.body == {"muted": [phone, other_mod]}
    assert out.events[0].sender == phone_mod


# ----------------------------------------------------- legacy tracksstatus sync


@pytest.mark.parametrize(
    ("version", "prevent", "audio", "applied", "expected"),
    [
        (None, False, True, True, [TS, UPD]),
        (None, True, False, True, []),
        (None, True, True, False, [REQ, Category.PERMISSION_REQUESTED, UPD]),
        ("1.0", True, True, False, [REQ, Category.PERMISSION_REQUESTED, UPD]),
        ("1.1", True, True, False, [REQ]),
        ("2.0", False, True, True, [TS, UPD]),
    ],
)
def test_tracksstatus_reports(
    version: str | None, prevent: bool, audio: bool, applied: bool, expected: list[Category]
) -> None:
    w = World(prevent_unmuting=prevent)
    a = w.join(BRIDGE)
    w.media(BRIDGE, a, audio=False)
    out = w.conf.report_tracks(BRIDGE, "s", a, audio=audio, video=None, version=version)
    assert out.body == {"attendeeId": a, "applied": applied}
    assert cats(out) == [str(c) for c in expected]
    assert w.audio(a) is (audio if applied else False)
    if not applied:
        assert out.events[0].content == {"attendeeId": a, "audio": False, "video": False}
    if Category.PERMISSION_REQUESTED in expected:
        assert w.get(a)["hand"] == "raised"
        assert out.events[1].content["kind"] == "PERMISSION_UNMUTE"


def test_tracksstatus_report_for_someone_else_is_refused() -> None:
    w = World()
    a = w.join(BRIDGE)
    with pytest.raises(Forbidden):
        w.conf.report_tracks(BRIDGE2, "s", a, audio=False, video=None, version=None)


def test_legacy_unmute_with_raised_hand_does_not_raise_again() -> None:
    w = World(prevent_unmuting=True)
    a = w.join(BRIDGE)
    w.conf.report_tracks(BRIDGE, "s", a, audio=True, video=None, version=None)
    out = w.conf.report_tracks(BRIDGE, "s", a, audio=True, video=None, version=None)
    assert cats(out) == [REQ]


# ---------------------------------------------------------------------- hands


def test_hand_raise_accept_lower() -> None:
    w = World(prevent_unmuting=True)
    a = w.join(BRIDGE)
    with pytest.raises(Conflict):
        w.conf.accept_hand(MOD, "s", w.meeting, a, "phone")
    out = w.conf.raise_hand(BRIDGE, "s", w.meeting, attendee_id=a, attendee_type="phone")
    assert out.body == {"attendeeId": a, "hand": "raised"}
    assert cats(out) == [Category.PERMISSION_REQUESTED, UPD]
    assert out.events[0].content["targetId"] == a
    again = w.conf.raise_hand(BRIDGE, "s", w.meeting, attendee_id=a)
    assert again.body == {"attendeeId": a, "hand": "raised"} and not again.events
    with pytest.raises(Forbidden):
        w.conf.accept_hand(BRIDGE, "s", w.meeting, a, "phone")
    out = w.conf.accept_hand(MOD, "s", w.meeting, a, "phone")
    assert cats(out) == [Category.PERMISSION_UPDATED, UPD]
    assert out.events[0].content == {"targetId": a, "kind": "PERMISSION_UNMUTE", "state": "GRANTED"}
    assert not w.audio(a)  # accepting does not unmute: the attendee does
    w.media(BRIDGE, a, audio=True)
    out = w.conf.lower_hand(MOD, "s", w.meeting, a, "phone")
    assert out.events[0].content["state"] == "REJECTED"
    # The permission is gone, so is the unmute (prevent unmuting is on).
    assert cats(out) == [Category.PERMISSION_UPDATED, TS, UPD, REQ]
    assert not w.audio(a)


def test_hand_lowered_by_self_is_withdrawn_and_others_may_not() -> None:
    w = World()
    a = w.join(ALICE)
    w.conf.raise_hand(ALICE, "s", w.meeting)
    with pytest.raises(Forbidden):
        w.conf.lower_hand(BOB, "s", w.meeting, a, None)
    with pytest.raises(Forbidden):
        w.conf.raise_hand(BOB, "s", w.meeting, attendee_id=a)
    out = w.conf.lower_hand(ALICE, "s", w.meeting, a, "web")
    assert out.events[0].content["state"] == "WITHDRAWN"
    assert cats(out) == [Category.PERMISSION_UPDATED, UPD]
    assert not w.conf.lower_hand(ALICE, "s", w.meeting, a, "web").events


def test_raise_hand_without_id_needs_exactly_one_own_attendee() -> None:
    w = World()
    with pytest.raises(NotFound):
        w.conf.raise_hand(BRIDGE, "s", w.meeting)
    w.join(BRIDGE)
    w.join(BRIDGE)
    with pytest.raises(BadRequest):
        w.conf.raise_hand(BRIDGE, "s", w.meeting)


# ---------------------------------------------------------------------- lobby

LOBBY = {"guest_policy": GuestPolicy.ASK_MODERATOR}


def test_lobby_request_is_queued_until_a_moderator_joins() -> None:
    w = World(**LOBBY)
    g = w.join(BRIDGE, guest=True)
    out = w.conf.request_admission(BRIDGE, "s", w.meeting, g, "phone")
    assert out.body == {"attendeeId": g, "state": "REQUESTED"}
    assert not out.events
    assert not w.conf.request_admission(BRIDGE, "s", w.meeting, g, None).events  # keeps its place
    meeting = w.conf.meeting(MOD, "s", w.meeting)
    assert [e["attendeeId"] for e in meeting["lobby"]] == [g]
    assert meeting["moderatorPresent"] is False
    out = w.conf.join(MOD, "s", w.meeting, attendee_type="web", display_name="Mod")
    assert cats(out) == [Category.ATTENDEE_JOINED, Category.PERMISSION_REQUESTED]
    assert out.events[1].content["targetId"] == g
    assert out.events[1].content["kind"] == "MEETING_JOIN"
    g2 = w.join(GINA)
    out = w.conf.request_admission(GINA, "s", w.meeting, g2, "web")
    assert cats(out) == [Category.PERMISSION_REQUESTED]


def test_lobby_allow_applies_mute_on_entry() -> None:
    w = World(mute_on_entry=True, **LOBBY)
    g = w.join(BRIDGE, guest=True)
    w.conf.request_admission(BRIDGE, "s", w.meeting, g, "phone")
    with pytest.raises(Forbidden):
        w.conf.allow(BRIDGE, "s", w.meeting, g)
    out = w.conf.allow(MOD, "s", w.meeting, g)
    assert cats(out) == [Category.PERMISSION_UPDATED, UPD, REQ]
    assert out.events[0].content == {"targetId": g, "kind": "MEETING_JOIN", "state": "GRANTED"}
    assert w.get(g)["admitted"] is True and not w.audio(g)
    assert w.conf.meeting(MOD, "s", w.meeting)["lobby"] == []
    with pytest.raises(Conflict):
        w.conf.allow(MOD, "s", w.meeting, g)
    with pytest.raises(Conflict):
        w.conf.request_admission(BRIDGE, "s", w.meeting, g, "phone")


def test_lobby_deny_removes() -> None:
    w = World(**LOBBY)
    g = w.join(BRIDGE, guest=True)
    out = w.conf.deny(MOD, "s", w.meeting, g)
    assert cats(out) == [Category.PERMISSION_UPDATED, Category.ATTENDEE_LEFT]
    assert out.events[0].content["state"] == "REJECTED"
    assert w.conf.attendees("s") == []


@pytest.mark.parametrize(("allow", "policy"), [(True, "ALWAYS_ACCEPT"), (False, "ALWAYS_DENY")])
def test_lobby_remember_settles_everyone_and_changes_policy(allow: bool, policy: str) -> None:
    w = World(**LOBBY)
    g1 = w.join(BRIDGE, guest=True)
    g2 = w.join(GINA)
    settle = w.conf.allow if allow else w.conf.deny
    out = settle(MOD, "s", w.meeting, g1, remember=True)
    assert out.events[0].category is Category.SETTINGS_UPDATED
    assert w.conf.settings("s").guest_policy == policy
    targets = [
        e.content["targetId"] for e in out.events if e.category is Category.PERMISSION_UPDATED
    ]
    assert targets == [g1, g2]
    assert [a.id for a in w.conf.attendees("s")] == ([g1, g2] if allow else [])


def test_lobby_withdrawn_when_the_caller_hangs_up() -> None:
    w = World(**LOBBY)
    g = w.join(BRIDGE, guest=True)
    w.conf.request_admission(BRIDGE, "s", w.meeting, g, "phone")
    out = w.conf.leave(BRIDGE, "s", w.meeting, "phone", g)
    assert cats(out) == [Category.PERMISSION_UPDATED, Category.ATTENDEE_LEFT]
    assert out.events[0].content == {"targetId": g, "kind": "MEETING_JOIN", "state": "WITHDRAWN"}


def test_admitted_waiting_moderator_announces_the_queue() -> None:
    w = World(**LOBBY)
    mod = w.join(BRIDGE, guest=True, role=Role.MODERATOR)
    g = w.join(GINA)
    w.conf.request_admission(GINA, "s", w.meeting, g, None)
    out = w.conf.allow(MOD, "s", w.meeting, mod)
    assert cats(out)[-1] == Category.PERMISSION_REQUESTED
    assert out.events[-1].content["targetId"] == g


# ------------------------------------------------------------ meeting lifecycle


def test_meeting_end() -> None:
    w = World()
    a = w.join(ALICE)
    with pytest.raises(Forbidden):
        w.conf.end_meeting(ALICE, "s", w.meeting)
    out = w.conf.end_meeting(MOD, "s", w.meeting)
    assert cats(out) == [Category.MEETING_ENDED]
    assert out.events[0].content == {"meetingId": w.meeting}
    assert w.conf.meeting(ALICE, "s", w.meeting)["state"] == "ended"
    assert w.conf.roster(ALICE, "s", w.meeting) == []
    with pytest.raises(MeetingEnded):
        w.conf.end_meeting(MOD, "s", w.meeting)
    with pytest.raises(MeetingEnded):
        w.conf.set_media(ALICE, "s", w.meeting, "web", a, audio=False)
    with pytest.raises(MeetingEnded):
        w.conf.join(ALICE, "s", w.meeting, attendee_type="web", display_name="late")
    body = w.conf.active_meeting(ALICE, "s").body
    assert body is not None and body["meetingId"] != w.meeting


def test_no_auto_start_needs_a_moderator_to_start() -> None:
    conf = Conference(
        [SpaceConfig("s", "S", Settings(auto_start=False))], ids=lambda: "m", now=lambda: 0
    )
    with pytest.raises(NotFound):
        conf.active_meeting(ALICE, "s")
    with pytest.raises(Forbidden):
        conf.start_meeting(ALICE, "s")
    assert conf.start_meeting(MOD, "s").body == {
        "meetingId": "m",
        "spaceId": "s",
        "settings": Settings(auto_start=False).to_json(),
    }
    with pytest.raises(Conflict):
        conf.start_meeting(MOD, "s")
    assert conf.active_meeting(ALICE, "s").body is not None


def test_prevent_unmuting_on_mutes_who_may_not_unmute() -> None:
    w = World()
    mod = w.join(MOD)
    member = w.join(ALICE)
    accepted = w.join(BOB)
    w.raise_and_accept(BOB, accepted)
    with pytest.raises(Forbidden):
        w.conf.update_settings(ALICE, "s", prevent_unmuting=True)
    out = w.conf.update_settings(MOD, "s", prevent_unmuting=True)
    assert cats(out) == [Category.SETTINGS_UPDATED, TS, UPD, REQ]
    assert out.events[-1].content["attendeeId"] == member
    assert w.audio(mod) and w.audio(accepted) and not w.audio(member)
    assert out.body == w.conf.settings("s").to_json()


# --------------------------------------------------------- Hypothesis invariants

CALLERS = [MOD, MOD2, BRIDGE, BRIDGE2, ALICE, BOB, GINA]
ACTIONS = [
    "join", "join_guest", "join_mod", "leave", "unmute", "mute", "report", "report_modern",
    "raise", "accept", "lower", "request", "allow", "deny", "remember", "prevent", "allow_unmuting",
    "mute_on_entry", "policy", "mute_all", "granted_unmute",
]  # fmt: skip
OWNERS = {c.token_name: c for c in CALLERS}

step = st.tuples(
    st.sampled_from(ACTIONS),
    st.sampled_from(CALLERS),
    st.integers(0, 15),
    st.booleans(),
)


def run(w: World, action: str, caller: Caller, index: int, flag: bool) -> None:
    attendees = w.conf.attendees("s")
    t = attendees[index % len(attendees)] if attendees else None
    conf, m = w.conf, w.meeting
    try:
        match action:
            case "join":
                w.join(caller, version="1.1" if flag else None)
            case "join_guest":
                w.join(caller, guest=True)
            case "join_mod":
                w.join(caller, role=Role.MODERATOR, guest=flag)
            case "prevent" | "allow_unmuting":
                conf.update_settings(caller, "s", prevent_unmuting=action == "prevent")
            case "mute_on_entry":
                conf.update_settings(caller, "s", mute_on_entry=flag)
            case "policy":
                conf.update_settings(caller, "s", guest_policy=list(GuestPolicy)[index % 3])
            case "mute_all":
                ids = [a.id for a in attendees[: index % 4]]
                conf.mute_all(
                    caller, "s", m, exclusions=ids, initiator=t.id if t and flag else None
                )
            case _ if t is None:
                pass
            case "leave":
                conf.leave(caller, "s", m, t.type, t.id)
            case "unmute" | "mute":
                conf.set_media(caller, "s", m, t.type, t.id, audio=action == "unmute", video=flag)
            case "report" | "report_modern":
                version = "1.1" if action == "report_modern" else None
                conf.report_tracks(caller, "s", t.id, audio=flag, video=None, version=version)
            case "raise":
                conf.raise_hand(caller, "s", m, attendee_id=t.id)
            case "granted_unmute":
                # The whole permission flow in one step, so that random runs often reach the state
                # "unmuted thanks to an accepted hand" that mute all and lowering must take back.
                owner = OWNERS[t.owner]
                conf.raise_hand(owner, "s", m, attendee_id=t.id)
                conf.accept_hand(caller, "s", m, t.id, t.type)
                conf.set_media(owner, "s", m, t.type, t.id, audio=True)
            case "accept":
                conf.accept_hand(caller, "s", m, t.id, t.type)
            case "lower":
                conf.lower_hand(caller, "s", m, t.id, None)
            case "request":
                conf.request_admission(caller, "s", m, t.id, None)
            case "allow":
                conf.allow(caller, "s", m, t.id)
            case "deny":
                conf.deny(caller, "s", m, t.id)
            case "remember":
                (conf.allow if flag else conf.deny)(caller, "s", m, t.id, remember=True)
    except ApiError:
        pass  # refusals are part of the game; the invariant must hold either way


def check_invariants(w: World) -> None:
    prevent = w.conf.settings("s").prevent_unmuting
    lobby = {e["attendeeId"] for e in w.conf.meeting(MOD, "s", w.meeting)["lobby"]}
    for a in w.conf.attendees("s"):
        if prevent and a.audio:
            assert a.role is Role.MODERATOR or a.hand is Hand.ACCEPTED, a
        if not a.admitted:
            assert not a.audio, a
        else:
            assert a.id not in lobby


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=40), st.booleans())
def test_prevent_unmuting_invariant_after_any_sequence(
    steps: list[tuple[str, Caller, int, bool]], prevent: bool
) -> None:
    w = World(prevent_unmuting=prevent)
    for action, caller, index, flag in steps:
        run(w, action, caller, index, flag)
        check_invariants(w)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(step, max_size=40),
    st.integers(0, 6),
    st.sampled_from([MOD, MOD2, BRIDGE]),
    st.booleans(),
)
def test_after_mute_all_only_excluded_and_initiator_may_be_unmuted(
    steps: list[tuple[str, Caller, int, bool]], n_excluded: int, caller: Caller, named: bool
) -> None:
    w = World()
    for action, who, index, flag in steps:
        run(w, action, who, index, flag)
    attendees = w.conf.attendees("s")
    excluded = [a.id for a in attendees[:n_excluded]]
    own_mods = [
        a.id for a in attendees if a.owner == caller.token_name and a.role is Role.MODERATOR
    ]
    initiator = own_mods[0] if own_mods and (named or caller is BRIDGE) else None
    before = {a.id: a.audio for a in attendees}
    try:
        out = w.conf.mute_all(caller, "s", w.meeting, exclusions=excluded, initiator=initiator)
    except Forbidden:
        assert caller is BRIDGE and initiator is None
        return
    [muted_event] = [e for e in out.events if e.category is Category.ALL_MUTED]
    spared = {e["attendeeId"] for e in muted_event.content["exclude"]}
    initiators = (
        {initiator} if initiator else {a.id for a in attendees if a.owner == caller.token_name}
    )
    assert spared == set(excluded) | initiators
    for a in w.conf.attendees("s"):
        if a.id in spared:
            assert a.audio == before[a.id]
        else:
            assert not a.audio and a.hand is not Hand.ACCEPTED, a
    check_invariants(w)


def test_only_the_owner_reports_talking_and_a_muted_attendee_never_talks() -> None:
    w = World()
    phone = w.join(BRIDGE, "Desk")
    out = w.conf.report_talking(BRIDGE, "s", w.meeting, "phone", phone, talking=True)
    (event,) = out.events
    assert event.category is Category.ATTENDEE_TALKING and event.sender == phone
    assert event.content == {"attendeeId": phone, "talking": True}
    with pytest.raises(Forbidden):
        w.conf.report_talking(BRIDGE2, "s", w.meeting, "phone", phone, talking=True)
    w.conf.set_media(MOD, "s", w.meeting, "phone", phone, audio=False)
    out = w.conf.report_talking(BRIDGE, "s", w.meeting, "phone", phone, talking=True)
    assert out.events[0].content["talking"] is False

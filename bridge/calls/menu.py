"""The voice menu of a dial-in number (docs/calls.md, "One number for every meeting"), as a pure
state machine: keys, the server's answers and the clock in; what to say and do out. No I/O and no
clock of its own, like the SIP core (docs/architecture.md): :mod:`bridge.calls.dialin` drives it
with the relay's keys and prompts, the conference client and one timer.

The caller keys the space's meeting ID and ``#``, then, if the space has a host PIN, the PIN and
``#`` (``#`` alone to join as a guest). ``*`` starts the entry over; an entry left unfinished for
:attr:`MenuRules.digit_timeout` is taken as if ``#`` ended it (callers forget it); a caller who keys
nothing for :attr:`MenuRules.silence` hears goodbye. Three unknown IDs, or three wrong PINs, end
the call: a call can test six entries at most (docs/decisions.md, "Dial-in"). The bounds across
calls (per source, per space) are :class:`Guesses`, which the adapter consults before it asks the
server.

The digits themselves are never logged: outputs carry them only to the adapter, which sends them
to the server in a request body.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass

from ..media.prompts import Prompt

MAX_DIGITS = 16
"""Longest meeting ID or PIN (what the server stores, docs/conference-api.md): a longer entry is
wrong without asking anyone."""
DIGITS = frozenset("0123456789")


class Stage(enum.Enum):
    """Where the menu is."""

    MEETING_ID = enum.auto()
    """Collecting the meeting ID."""
    FINDING = enum.auto()
    """The server is asked which space the ID names."""
    PIN = enum.auto()
    """Collecting the host PIN (``#`` alone: a guest)."""
    CHECKING = enum.auto()
    """The server is asked whether the PIN is right."""
    DONE = enum.auto()
    """Joined or told goodbye: nothing more to do."""


COLLECTING = frozenset({Stage.MEETING_ID, Stage.PIN})


class Outcome(enum.StrEnum):
    """How a menu ended (the ``outcome`` label of ``spaces_bridge_menu_calls_total``)."""

    JOINED = "joined"
    JOINED_HOST = "joined_host"
    NOT_FOUND = "not_found"
    """Three unknown meeting IDs."""
    WRONG_PIN = "wrong_pin"
    """Three wrong PINs."""
    LIMITED = "limited"
    """Refused by a bound across calls (per source or per space), without checking."""
    SILENCE = "silence"
    UNAVAILABLE = "unavailable"
    """The conference server could not answer."""


# -- outputs ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Say:
    """Play these prompts, one after the other, in place of whatever plays."""

    prompts: tuple[Prompt, ...]


@dataclass(frozen=True, slots=True)
class Find:
    """Ask the server which space ``dial_in_id`` names; answer with :meth:`Menu.found`."""

    dial_in_id: str


@dataclass(frozen=True, slots=True)
class Check:
    """Ask the server whether ``pin`` is the host PIN of the space ``dial_in_id`` names; answer
    with :meth:`Menu.checked`."""

    dial_in_id: str
    pin: str
    space_id: str


@dataclass(frozen=True, slots=True)
class Join:
    """Join the caller to ``space_id``'s meeting, as a moderator when ``host``."""

    space_id: str
    host: bool


@dataclass(frozen=True, slots=True)
class Goodbye:
    """Say goodbye (after what :class:`Say` queued), then hang up."""

    outcome: Outcome


Output = Say | Find | Check | Join | Goodbye


# -- answers ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Found:
    space_id: str
    host_pin: bool


class Answer(enum.Enum):
    """Answers to :class:`Find` or :class:`Check` other than a space or a verdict."""

    UNKNOWN = enum.auto()
    """No space has that ID."""
    LIMITED = enum.auto()
    """Not asked: a bound across calls is reached (:class:`Guesses`)."""
    UNAVAILABLE = enum.auto()
    """The server could not answer."""


@dataclass(frozen=True, slots=True)
class MenuRules:
    """The menu's timings and per-call bounds."""

    digit_timeout: float = 5.0
    """An entry left this long (seconds) after its last key counts as ended by ``#``."""
    silence: float = 30.0
    """A caller who keys nothing this long after the last prompt ended hears goodbye."""
    tries: int = 3
    """Unknown meeting IDs, and wrong PINs, a call may enter before it hears goodbye."""
    repeat_gap: float = 0.25
    """The same key from the other carrier (INFO and RFC 4733) within this counts once: phones
    that send both for one press."""


class Menu:
    """One caller's menu. Feed it with :meth:`start`, :meth:`key`, :meth:`found`, :meth:`checked`
    and :meth:`timer` (at :attr:`deadline`); each returns what to do, in order."""

    __slots__ = (
        "_digits",
        "_heard_at",
        "_last",
        "_quiet_since",
        "_rules",
        "_typed_at",
        "dial_in_id",
        "space_id",
        "stage",
        "wrong_ids",
        "wrong_pins",
    )

    def __init__(self, rules: MenuRules) -> None:
        self._rules = rules
        self.stage = Stage.MEETING_ID
        self._digits = ""
        self._typed_at: float | None = None
        """The last key of the entry in progress, for the inter-digit timeout."""
        self._quiet_since = 0.0
        """Since when the caller has keyed nothing (or the last prompt ended)."""
        self._heard_at = 0.0
        self._last: tuple[str, str, float] | None = None
        self.dial_in_id: str | None = None
        self.space_id: str | None = None
        self.wrong_ids = 0
        self.wrong_pins = 0

    @property
    def collecting(self) -> bool:
        return self.stage in COLLECTING

    @property
    def deadline(self) -> float | None:
        """When :meth:`timer` must be called next; None while the server is asked, or done."""
        if not self.collecting:
            return None
        silence = max(self._quiet_since, self._heard_at) + self._rules.silence
        if self._typed_at is None:
            return silence
        return min(silence, self._typed_at + self._rules.digit_timeout)

    def start(self, now: float) -> list[Output]:
        self._quiet_since = now
        return [Say((Prompt.MENU_MEETING_ID,))]

    def heard_until(self, until: float) -> None:
        """The prompts just queued end at ``until``: silence counts from then."""
        self._heard_at = max(self._heard_at, until)

    def key(self, digit: str, now: float, source: str = "rtp") -> list[Output]:
        """One key the caller pressed; ``source`` is its carrier (``rtp`` or ``info``)."""
        last, self._last = self._last, (digit, source, now)
        if (
            last is not None
            and last[0] == digit
            and last[1] != source
            and now - last[2] < self._rules.repeat_gap
        ):
            self._last = last
            return []
        if not self.collecting:
            return []  # typed ahead while the server is asked: dropped, the next prompt says why
        self._quiet_since = now
        if digit == "*":
            self._digits, self._typed_at = "", None
            return [Say((self._prompt(),))]
        if digit == "#":
            return self._submit(now)
        if digit not in DIGITS:
            return []  # A-D: no meaning here
        self._typed_at = now
        if len(self._digits) <= MAX_DIGITS:  # one past the bound marks the entry too long
            self._digits += digit
        return []

    def timer(self, now: float) -> list[Output]:
        """At :attr:`deadline`: an unfinished entry is submitted; a silent caller hears goodbye."""
        deadline = self.deadline
        if deadline is None or now < deadline:
            return []
        if self._typed_at is not None and now >= self._typed_at + self._rules.digit_timeout:
            return self._submit(now)
        self.stage = Stage.DONE
        return [Goodbye(Outcome.SILENCE)]

    def found(self, answer: Found | Answer, now: float) -> list[Output]:
        """The server's answer to :class:`Find`."""
        if self.stage is not Stage.FINDING:
            return []
        self._quiet_since = now
        match answer:
            case Found(space_id=space, host_pin=True):
                self.space_id, self.stage = space, Stage.PIN
                return [Say((Prompt.MENU_HOST_PIN,))]
            case Found(space_id=space):
                self.space_id, self.stage = space, Stage.DONE
                return [Join(space, host=False)]
            case Answer.UNKNOWN:
                self.wrong_ids += 1
                if self.wrong_ids >= self._rules.tries:
                    self.stage = Stage.DONE
                    return [Say((Prompt.MENU_NOT_FOUND,)), Goodbye(Outcome.NOT_FOUND)]
                self.stage = Stage.MEETING_ID
                return [Say((Prompt.MENU_NOT_FOUND, Prompt.MENU_MEETING_ID))]
            case Answer.LIMITED:
                self.stage = Stage.DONE
                return [Goodbye(Outcome.LIMITED)]
            case Answer.UNAVAILABLE:
                self.stage = Stage.DONE
                return [Goodbye(Outcome.UNAVAILABLE)]

    def checked(self, answer: bool | Answer, now: float) -> list[Output]:
        """The server's answer to :class:`Check`: whether the PIN was the host's."""
        if self.stage is not Stage.CHECKING or self.space_id is None:
            return []
        self._quiet_since = now
        if answer is True:
            self.stage = Stage.DONE
            return [Join(self.space_id, host=True)]
        if answer is Answer.LIMITED:
            self.stage = Stage.DONE
            return [Goodbye(Outcome.LIMITED)]
        if answer is Answer.UNAVAILABLE:
            self.stage = Stage.DONE
            return [Goodbye(Outcome.UNAVAILABLE)]
        return self._wrong_pin()

    # -- helpers -----------------------------------------------------------------------------------
    def _prompt(self) -> Prompt:
        return Prompt.MENU_HOST_PIN if self.stage is Stage.PIN else Prompt.MENU_MEETING_ID

    def _submit(self, now: float) -> list[Output]:
        digits, self._digits, self._typed_at = self._digits, "", None
        self._quiet_since = now
        if self.stage is Stage.MEETING_ID:
            if not digits:
                return [Say((Prompt.MENU_MEETING_ID,))]  # "#" alone: ask again, no try spent
            if len(digits) > MAX_DIGITS:
                self.stage = Stage.FINDING
                return self.found(Answer.UNKNOWN, now)
            self.stage, self.dial_in_id = Stage.FINDING, digits
            return [Find(digits)]
        assert self.stage is Stage.PIN and self.space_id is not None
        if not digits:
            self.stage = Stage.DONE
            return [Join(self.space_id, host=False)]  # "otherwise press pound": a guest
        if len(digits) > MAX_DIGITS or self.dial_in_id is None:
            return self._wrong_pin()
        self.stage = Stage.CHECKING
        return [Check(self.dial_in_id, digits, self.space_id)]

    def _wrong_pin(self) -> list[Output]:
        # A wrong PIN asks again rather than joining as a guest: a host who mistyped would
        # otherwise sit in the meeting without the moderator's keys, and not know why.
        self.wrong_pins += 1
        if self.wrong_pins >= self._rules.tries:
            self.stage = Stage.DONE
            return [Say((Prompt.MENU_WRONG_PIN,)), Goodbye(Outcome.WRONG_PIN)]
        self.stage = Stage.PIN
        return [Say((Prompt.MENU_WRONG_PIN, Prompt.MENU_HOST_PIN))]


class Guesses:
    """Wrong entries by key (a source address, a space) over a sliding window: the menu's bounds
    across calls (docs/security.md). Pure: the caller passes ``now``."""

    __slots__ = ("_limit", "_max_keys", "_seen", "_window")

    def __init__(self, limit: int, *, window: float = 60.0, max_keys: int = 10_000) -> None:
        """At most ``limit`` wrong entries per key in ``window`` seconds; at most ``max_keys``
        keys remembered (a bound on what many sources can make the bridge hold: past it the
        oldest key is forgotten, and the per-space bound still holds)."""
        self._limit = limit
        self._window = window
        self._max_keys = max_keys
        self._seen: dict[Hashable, deque[float]] = {}

    def allowed(self, key: Hashable, now: float) -> bool:
        """Whether one more entry under ``key`` may be checked now."""
        times = self._seen.get(key)
        if times is None:
            return self._limit > 0
        self._expire(key, times, now)
        return len(times) < self._limit

    def failed(self, key: Hashable, now: float) -> None:
        """An entry under ``key`` was wrong."""
        times = self._seen.get(key)
        if times is None:
            if len(self._seen) >= self._max_keys:
                for old in [
                    k for k, t in self._seen.items() if not t or t[-1] <= now - self._window
                ]:
                    del self._seen[old]
                if len(self._seen) >= self._max_keys:
                    del self._seen[next(iter(self._seen))]
            times = self._seen[key] = deque()
        self._expire(key, times, now)
        times.append(now)

    def __len__(self) -> int:
        return len(self._seen)

    def _expire(self, key: Hashable, times: deque[float], now: float) -> None:
        while times and times[0] <= now - self._window:
            times.popleft()
        while len(times) > self._limit:  # a lowered limit (reload): keep only what counts
            times.popleft()

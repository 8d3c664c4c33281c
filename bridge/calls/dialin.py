"""The voice menu's adapter (docs/calls.md, "One number for every meeting"): drives each menu call's
:class:`~bridge.calls.menu.Menu` with the relay's keys and prompts, the conference server's dial-in
route and one timer per call, and holds the bounds on guessing across calls
(:class:`~bridge.calls.menu.Guesses`). What happens once the caller chose a meeting is the call
layer's (:class:`~bridge.calls.menuentry.MenuEntry`): the ``enter`` callback joins it like any call.

Logs never carry the digits: an ID or a PIN is said to be unknown, wrong or refused, nothing more.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import assert_never

import structlog

from ..conference.client.client import SpacesClient
from ..conference.client.errors import NotFound, SpacesError
from ..media.prompts import Prompt
from ..ops.metrics import Metrics
from .audio import CallAudio
from .call import Call, clog
from .menu import (
    Answer,
    Check,
    Find,
    Found,
    Goodbye,
    Guesses,
    Join,
    Menu,
    Outcome,
    Output,
    Say,
)
from .protocols import Cancellable
from .settings import CallSettings, GuessBounds

log = structlog.get_logger("bridge.calls")

BYE_AFTER = 0.2
"""Seconds between the end of the goodbye prompt and the BYE: the last frames' way to the phone."""


@dataclass(slots=True)
class _Running:
    menu: Menu
    source: str
    """The caller's source address (the per-source bounds)."""
    timer: Cancellable | None = None


class Bounds:
    """The guessing bounds across calls; rebuilt when a reload changes them."""

    def __init__(self, bounds: GuessBounds) -> None:
        self.config = bounds
        self.ids_per_source = Guesses(bounds.ids_per_source)
        self.pins_per_source = Guesses(bounds.pins_per_source)
        self.pins_per_space = Guesses(bounds.pins_per_space)


class DialInMenus:
    """Every call in the voice menu; one instance per daemon."""

    def __init__(
        self,
        client: SpacesClient,
        audio: CallAudio,
        settings: CallSettings,
        *,
        clock: Callable[[], float],
        spawn: Callable[[Awaitable[object]], None],
        later: Callable[[float, Callable[[], None]], Cancellable],
        enter: Callable[[Call, str, bool], None],
        hang_up: Callable[[Call, str, tuple[int, str] | None], None],
        metrics: Metrics | None = None,
    ) -> None:
        """``enter(call, space_id, host)`` joins the caller to the space's meeting (as a
        moderator when ``host``); ``hang_up(call, why, reason)`` sends BYE, with an RFC 3326
        ``Reason`` (cause, text) when given."""
        self._client = client
        self._audio = audio
        self.settings = settings
        self._clock = clock
        self._spawn = spawn
        self._later = later
        self._enter = enter
        self._hang_up = hang_up
        self._metrics = metrics
        self._running: dict[str, _Running] = {}  # by Call-ID
        self._bounds = Bounds(settings.guesses)
        self.available: bool | None = None
        """Whether the conference server resolves dial-in IDs; None until it answered."""

    def reconfigure(self, settings: CallSettings) -> None:
        self.settings = settings
        if settings.guesses != self._bounds.config:
            self._bounds = Bounds(settings.guesses)

    async def probe(self) -> bool | None:
        """Ask the server whether it has dial-in IDs (once it answered, the answer stays); None
        when it cannot be reached."""
        if self.available is None:
            try:
                self.available = await self._client.dial_in_available()
            except SpacesError as exc:
                log.warning("dial-in: the conference server did not answer", error=str(exc))
        return self.available

    @property
    def count(self) -> int:
        return len(self._running)

    # -- the call layer --------------------------------------------------------------------------
    def start(self, call: Call, source: str) -> None:
        """The menu answered ``call``: greet the caller."""
        menu = Menu(self.settings.menu)
        run = self._running[call.call_id] = _Running(menu, source)
        clog(call).info("menu started")
        self._perform(call, run, menu.start(self._clock()))

    def on_key(self, call: Call, digit: str, source: str) -> None:
        """A key of a call in the menu (``source``: ``rtp`` or ``info``)."""
        run = self._running.get(call.call_id)
        if run is None:
            return
        if run.menu.collecting:
            self._audio.hush(call)  # the caller knows what to do: stop talking over the keys
        self._perform(call, run, run.menu.key(digit, self._clock(), source))

    def end(self, call: Call) -> None:
        """The call ended (hung up, or by us): forget its menu."""
        run = self._running.pop(call.call_id, None)
        if run is not None:  # still in the menu: the caller hung up (a finished menu is gone)
            if run.timer is not None:
                run.timer.cancel()
            self._count("hung_up")

    def refused(self, call: Call, why: str, reason: tuple[int, str]) -> None:
        """The meeting the caller chose refused it (no active meeting, guests denied, full):
        goodbye, then BYE with the refusal as its ``Reason``."""
        clog(call).info("call refused", status=reason[0], why=why)
        self._farewell(call, (Prompt.MENU_GOODBYE,), f"refused {reason[0]}", reason)

    # -- the menu's outputs ------------------------------------------------------------------------
    def _perform(self, call: Call, run: _Running, outputs: list[Output]) -> None:
        queued: list[Prompt] = []
        for output in outputs:
            match output:
                case Say(prompts=prompts):
                    queued += prompts
                case Find(dial_in_id=dial_in_id):
                    self._find(call, run, dial_in_id)
                case Check():
                    self._check(call, run, output)
                case Join(space_id=space, host=host):
                    self._finish(call, run, Outcome.JOINED_HOST if host else Outcome.JOINED)
                    clog(call).info("menu chose a meeting", chosen_space=space, host=host)
                    self._enter(call, space, host)
                    return
                case Goodbye(outcome=outcome):
                    self._finish(call, run, outcome)
                    self._goodbye(call, (*queued, Prompt.MENU_GOODBYE), outcome)
                    return
                case _:
                    assert_never(output)
        if queued:
            duration = self._audio.say(call, tuple(queued))
            run.menu.heard_until(self._clock() + duration)
        self._schedule(call, run)

    def _schedule(self, call: Call, run: _Running) -> None:
        if run.timer is not None:
            run.timer.cancel()
            run.timer = None
        deadline = run.menu.deadline
        if deadline is None:
            return

        def due() -> None:
            run.timer = None
            if self._running.get(call.call_id) is run:
                self._perform(call, run, run.menu.timer(self._clock()))

        run.timer = self._later(max(0.0, deadline - self._clock()), due)

    def _find(self, call: Call, run: _Running, dial_in_id: str) -> None:
        now = self._clock()
        if not self._bounds.ids_per_source.allowed(run.source, now):
            self._guess("id", "refused")
            clog(call).warning("menu: meeting ID refused unchecked", why="source guessed too often")
            self._perform(call, run, run.menu.found(Answer.LIMITED, now))
            return

        async def ask() -> None:
            answer: Found | Answer
            try:
                result = await self._client.dial_in(dial_in_id)
            except NotFound as exc:
                answer = Answer.UNKNOWN if exc.code == "dialin_not_found" else Answer.UNAVAILABLE
            except SpacesError as exc:
                clog(call).warning("menu: the conference server did not answer", error=str(exc))
                answer = Answer.UNAVAILABLE
            else:
                answer = Found(result.space_id, result.host_pin)
            if self._running.get(call.call_id) is not run:
                return  # hung up meanwhile
            if answer is Answer.UNKNOWN:
                self._bounds.ids_per_source.failed(run.source, self._clock())
                self._guess("id", "wrong")
                clog(call).info("menu: unknown meeting ID", tries=run.menu.wrong_ids + 1)
            self._perform(call, run, run.menu.found(answer, self._clock()))

        self._spawn(ask())

    def _check(self, call: Call, run: _Running, check: Check) -> None:
        now = self._clock()
        bounds = self._bounds
        space = check.space_id
        if not bounds.pins_per_source.allowed(run.source, now) or not bounds.pins_per_space.allowed(
            space, now
        ):
            # Refused without asking: a right PIN would be refused too, so guessing learns nothing.
            self._guess("pin", "refused")
            clog(call).warning("menu: PIN refused unchecked", why="too many wrong PINs a minute")
            self._perform(call, run, run.menu.checked(Answer.LIMITED, now))
            return

        async def ask() -> None:
            answer: bool | Answer
            try:
                answer = (await self._client.dial_in(check.dial_in_id, check.pin)).host
            except SpacesError as exc:
                clog(call).warning("menu: the conference server did not answer", error=str(exc))
                answer = Answer.UNAVAILABLE
            if self._running.get(call.call_id) is not run:
                return
            if answer is False:
                moment = self._clock()
                bounds.pins_per_source.failed(run.source, moment)
                bounds.pins_per_space.failed(space, moment)
                self._guess("pin", "wrong")
                clog(call).info("menu: wrong PIN", tries=run.menu.wrong_pins + 1)
            self._perform(call, run, run.menu.checked(answer, self._clock()))

        self._spawn(ask())

    def _goodbye(self, call: Call, prompts: tuple[Prompt, ...], outcome: Outcome) -> None:
        clog(call).info("menu said goodbye", outcome=outcome.value)
        self._farewell(call, prompts, f"menu: {outcome.value}", None)

    def _farewell(
        self, call: Call, prompts: tuple[Prompt, ...], why: str, reason: tuple[int, str] | None
    ) -> None:
        """Say ``prompts``, then hang up once they have played."""
        duration = self._audio.say(call, prompts)

        def bye() -> None:
            if not call.ended:
                self._hang_up(call, why, reason)

        if duration <= 0:
            bye()
        else:
            self._later(duration + BYE_AFTER, bye)

    def _finish(self, call: Call, run: _Running, outcome: Outcome) -> None:
        if run.timer is not None:
            run.timer.cancel()
            run.timer = None
        self._running.pop(call.call_id, None)
        self._count(outcome.value)

    def _count(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.menu_calls.labels(outcome).inc()

    def _guess(self, kind: str, result: str) -> None:
        if self._metrics is not None:
            self._metrics.menu_guesses.labels(kind, result).inc()

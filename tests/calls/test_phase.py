"""A call's lifecycle table (bridge/calls/call.py): every (phase, step) pair moves as listed or
raises, an ended call stays ended, and every phase lies on a way from JOINING to ENDED."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bridge.calls.call import LOBBY, TRANSITIONS, Call, Phase, PhaseError, Step
from bridge.calls.policy import CallState
from bridge.calls.version import Generation

PAIRS = [(phase, step) for phase in Phase for step in Step]


def call_in(phase: Phase) -> Call:
    call = Call("c1", "demo", "Phone", CallState(Generation.LEGACY))
    call.phase = phase  # set-up only: the call layer moves it with advance()
    return call


def every_pair(test: Callable[[tuple[Phase, Step]], None]) -> Callable[[tuple[Phase, Step]], None]:
    """Each pair as an explicit example, so that none is left to chance."""
    for pair in PAIRS:
        test = example(pair)(test)
    return test


@every_pair
@given(st.sampled_from(PAIRS))
def test_each_pair_moves_as_listed_and_any_other_raises(pair: tuple[Phase, Step]) -> None:
    phase, step = pair
    call = call_in(phase)
    expected = TRANSITIONS.get(pair)
    if expected is None:
        with pytest.raises(PhaseError):
            call.advance(step)
        assert call.phase is phase  # a refused step changes nothing
    else:
        call.advance(step)
        assert call.phase is expected
    assert call.ended is (call.phase is Phase.ENDED)
    assert call.waiting is (call.phase in LOBBY)


@given(st.lists(st.sampled_from(list(Step)), max_size=10))
def test_a_walk_from_joining_stays_in_the_table(steps: list[Step]) -> None:
    call = call_in(Phase.JOINING)
    for step in steps:
        expected = TRANSITIONS.get((call.phase, step), call.phase)
        try:
            call.advance(step)
        except PhaseError:
            assert (call.phase, step) not in TRANSITIONS
        assert call.phase is expected


def test_every_phase_but_ended_can_end_and_ended_is_final() -> None:
    assert not any(phase is Phase.ENDED for phase, _ in TRANSITIONS)
    others = [phase for phase in Phase if phase is not Phase.ENDED]
    assert all(TRANSITIONS[phase, Step.END] is Phase.ENDED for phase in others)


def test_every_phase_is_reached_from_joining() -> None:
    reached, frontier = {Phase.JOINING}, [Phase.JOINING]
    while frontier:
        phase = frontier.pop()
        for (source, _), target in TRANSITIONS.items():
            if source is phase and target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(Phase)

"""The voice menu's digit collector (bridge/calls/menu.py), alone: keys, answers and time stepped by
hand, and the bounds on guessing across calls (:class:`Guesses`)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bridge.calls.menu import (
    MAX_DIGITS,
    Answer,
    Check,
    Find,
    Found,
    Goodbye,
    Guesses,
    Join,
    Menu,
    MenuRules,
    Outcome,
    Output,
    Say,
    Stage,
)
from bridge.media.prompts import Prompt

RULES = MenuRules()


def keyed(menu: Menu, keys: str, now: float = 1.0, source: str = "rtp") -> list[Output]:
    out: list[Output] = []
    for i, key in enumerate(keys):
        out += menu.key(key, now + i * 0.3, source)
    return out


def started() -> Menu:
    menu = Menu(RULES)
    assert menu.start(0.0) == [Say((Prompt.MENU_MEETING_ID,))]
    return menu


def test_an_id_and_pound_asks_the_server_then_joins_a_space_without_pin() -> None:
    menu = started()
    assert keyed(menu, "1000#") == [Find("1000")]
    assert menu.stage is Stage.FINDING and menu.deadline is None
    assert menu.found(Found("demo", host_pin=False), 3.0) == [Join("demo", host=False)]
    assert menu.stage.name == "DONE"


def test_a_space_with_a_pin_asks_it_and_pound_alone_is_a_guest() -> None:
    menu = started()
    keyed(menu, "2000#")
    assert menu.found(Found("board", host_pin=True), 3.0) == [Say((Prompt.MENU_HOST_PIN,))]
    assert keyed(menu, "#", 4.0) == [Join("board", host=False)]


def test_the_right_pin_joins_as_host_and_a_wrong_one_asks_again_twice() -> None:
    menu = started()
    keyed(menu, "2000#")
    menu.found(Found("board", host_pin=True), 3.0)
    assert keyed(menu, "11#", 4.0) == [Check("2000", "11", "board")]
    assert menu.checked(False, 5.0) == [Say((Prompt.MENU_WRONG_PIN, Prompt.MENU_HOST_PIN))]
    keyed(menu, "22#", 6.0)
    menu.checked(False, 7.0)
    keyed(menu, "4242#", 8.0)
    assert menu.checked(True, 9.0) == [Join("board", host=True)]


def test_three_wrong_pins_say_goodbye() -> None:
    menu = started()
    keyed(menu, "2000#")
    menu.found(Found("board", host_pin=True), 3.0)
    for attempt in range(3):
        keyed(menu, "9#", 4.0 + attempt)
        out = menu.checked(False, 4.5 + attempt)
    assert out == [Say((Prompt.MENU_WRONG_PIN,)), Goodbye(Outcome.WRONG_PIN)]


def test_three_unknown_ids_say_not_found_each_time_then_goodbye() -> None:
    menu = started()
    for attempt in range(3):
        assert keyed(menu, "9#", 1.0 + attempt * 2) == [Find("9")]
        out = menu.found(Answer.UNKNOWN, 2.0 + attempt * 2)
        if attempt < 2:
            assert out == [Say((Prompt.MENU_NOT_FOUND, Prompt.MENU_MEETING_ID))]
    assert out == [Say((Prompt.MENU_NOT_FOUND,)), Goodbye(Outcome.NOT_FOUND)]
    assert menu.stage is Stage.DONE and keyed(menu, "1000#", 20.0) == []


def test_star_starts_over_and_pound_alone_asks_again_without_a_try() -> None:
    menu = started()
    assert keyed(menu, "99*") == [Say((Prompt.MENU_MEETING_ID,))]
    assert keyed(menu, "#", 3.0) == [Say((Prompt.MENU_MEETING_ID,))]
    assert keyed(menu, "1000#", 4.0) == [Find("1000")]
    assert menu.wrong_ids == 0


def test_an_unfinished_entry_is_taken_after_the_inter_digit_timeout() -> None:
    menu = started()
    keyed(menu, "1000", 1.0)
    deadline = menu.deadline
    assert deadline == 1.9 + RULES.digit_timeout
    assert menu.timer(deadline - 0.1) == []
    assert menu.timer(deadline) == [Find("1000")]


def test_silence_after_the_prompt_says_goodbye() -> None:
    menu = started()
    menu.heard_until(3.0)  # the greeting lasts 3 s
    assert menu.deadline == 3.0 + RULES.silence
    assert menu.timer(RULES.silence + 1.0) == []
    assert menu.timer(3.0 + RULES.silence) == [Goodbye(Outcome.SILENCE)]


def test_an_entry_longer_than_any_id_is_unknown_without_asking() -> None:
    menu = started()
    out = keyed(menu, "1" * (MAX_DIGITS + 1) + "#", 0.0)
    assert out == [Say((Prompt.MENU_NOT_FOUND, Prompt.MENU_MEETING_ID))]
    assert menu.wrong_ids == 1


def test_one_press_sent_both_as_info_and_rtp_counts_once() -> None:
    menu = started()
    menu.key("1", 1.0, "rtp")
    menu.key("1", 1.05, "info")  # the same press, by the other carrier
    menu.key("1", 1.3, "rtp")  # a second press
    assert menu.key("#", 1.6, "rtp") == [Find("11")]


def test_limits_and_failures_of_the_server_say_goodbye() -> None:
    for answer, outcome in (
        (Answer.LIMITED, Outcome.LIMITED),
        (Answer.UNAVAILABLE, Outcome.UNAVAILABLE),
    ):
        menu = started()
        keyed(menu, "1#")
        assert menu.found(answer, 2.0) == [Goodbye(outcome)]
        menu = started()
        keyed(menu, "1#")
        menu.found(Found("board", host_pin=True), 2.0)
        keyed(menu, "5555#", 3.0)
        assert menu.checked(answer, 4.0) == [Goodbye(outcome)]


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("key"), st.sampled_from("0123456789*#A"), st.floats(0, 3)),
            st.tuples(
                st.just("answer"),
                st.sampled_from(["found", "pin", "unknown", "limited"]),
                st.floats(0, 3),
            ),
            st.tuples(st.just("verdict"), st.booleans(), st.floats(0, 3)),
            st.tuples(st.just("timer"), st.none(), st.floats(0, 40)),
        ),
        max_size=60,
    )
)
def test_any_sequence_ends_at_most_once_and_tests_at_most_six_entries(
    steps: list[tuple[str, object, float]],
) -> None:
    menu = started()
    now, endings, asked = 0.0, 0, 0
    for kind, value, step in steps:
        now += step
        if kind == "key":
            out = menu.key(str(value), now)
        elif kind == "answer":
            answers: dict[object, Found | Answer] = {
                "found": Found("demo", host_pin=False),
                "pin": Found("board", host_pin=True),
                "unknown": Answer.UNKNOWN,
                "limited": Answer.LIMITED,
            }
            out = menu.found(answers[value], now)
        elif kind == "verdict":
            out = menu.checked(bool(value), now)
        else:
            deadline = menu.deadline
            out = menu.timer(deadline if deadline is not None else now)
        endings += sum(isinstance(o, Join | Goodbye) for o in out)
        asked += sum(isinstance(o, Find | Check) for o in out)
        assert all(len(o.dial_in_id) <= MAX_DIGITS for o in out if isinstance(o, Find))
        if any(isinstance(o, Join | Goodbye) for o in out):
            assert menu.stage is Stage.DONE and menu.deadline is None
        # Silence or an unfinished entry always leads somewhere: a waiting menu has a deadline.
        assert (menu.deadline is not None) == menu.collecting
    assert endings <= 1
    assert asked <= 2 * RULES.tries  # three IDs and three PINs at most


def test_guesses_are_bounded_per_key_over_a_sliding_minute() -> None:
    guesses = Guesses(3)
    for at in (0.0, 10.0, 20.0):
        assert guesses.allowed("10.0.0.1", at)
        guesses.failed("10.0.0.1", at)
    assert not guesses.allowed("10.0.0.1", 30.0)
    assert guesses.allowed("10.0.0.2", 30.0)  # another key has its own count
    assert guesses.allowed("10.0.0.1", 60.0)  # the first one left the window


@given(st.lists(st.tuples(st.integers(0, 50), st.floats(0, 5)), max_size=300))
def test_guesses_never_hold_more_keys_than_bounded(events: list[tuple[int, float]]) -> None:
    guesses = Guesses(2, max_keys=8)
    now = 0.0
    for key, step in events:
        now += step
        guesses.failed(key, now)
        assert len(guesses) <= 8

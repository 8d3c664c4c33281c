"""The moderator console in a real browser (Debian's Chromium driven by Playwright) while real sipp
phones are in the meeting: what the moderator clicks reaches the phones as SIP."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.interop.harness import MODERATOR, Daemon, running_daemon
from tests.interop.meeting import Moderator, phone_call
from tests.interop.scenario import Phone

pytestmark = pytest.mark.interop

CHROMIUM = pathlib.Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if TYPE_CHECKING:
    import playwright.sync_api as playwright_sync
    from playwright.sync_api import Browser, Page
else:  # a dev dependency: without it, these tests are skipped rather than failing to import
    playwright_sync = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("chromium is not installed (make test installs it with apt-get)")
    with playwright_sync.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def daemon(tmp_path: pathlib.Path) -> Iterator[Daemon]:
    with running_daemon(tmp_path) as d:
        yield d


def open_console(browser: Browser, daemon: Daemon, space: str = "demo") -> tuple[Page, list[str]]:
    """The signed-in console, and the list its script errors and console errors go to."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{daemon.api_url()}/?space={space}")
    page.get_by_label("Moderator token").fill(MODERATOR)
    page.get_by_role("button", name="Sign in").click()
    playwright_sync.expect(page.locator("#connection")).to_have_text("live")
    return page, errors


def test_mute_from_the_console_reaches_the_phone(
    browser: Browser, daemon: Daemon, tmp_path: pathlib.Path
) -> None:
    phones = tmp_path / "phones"
    phones.mkdir()
    phone = Phone().invite().expect_reinvite("sendonly").pause(1500).bye()
    other = Phone(name="Desk Phone 2").invite().pause(8000).bye()
    with (
        phone_call(daemon, phone, phones, name="one"),
        phone_call(daemon, other, tmp_path, name="two"),
    ):
        Moderator(daemon).phone("Desk Phone 2")
        page, errors = open_console(browser, daemon)
        row = page.locator("tr", has_text="Desk Phone 1")
        playwright_sync.expect(row.locator("td.audio")).to_have_text("unmuted")
        playwright_sync.expect(page.locator("tr", has_text="Desk Phone 2")).to_be_visible()
        page.get_by_role("button", name="Mute Desk Phone 1").click()
        playwright_sync.expect(row.locator("td.audio")).to_have_text("muted")
        daemon.wait_log("mute signalled")
        # Mute all, sparing phone 2 (which would fail on any re-INVITE).
        page.get_by_label("Spare Desk Phone 2 from mute all").check()
        page.get_by_role("button", name="Mute all").click()
        playwright_sync.expect(page.locator("#event-log")).to_contain_text("all.parties.muted")
        two = page.locator("tr", has_text="Desk Phone 2")
        playwright_sync.expect(two.locator("td.audio")).to_have_text("unmuted")
        page.screenshot(path=str(tmp_path / "console-muted.png"), full_page=True)
        assert errors == []


def test_a_hand_raised_with_star9_is_accepted_in_the_console(
    browser: Browser, daemon: Daemon, tmp_path: pathlib.Path
) -> None:
    phone = (
        Phone()
        .invite(answer="sendonly")  # the space prevents unmuting: members start muted
        .info("application/dtmf-relay", "Signal=*\nDuration=100")
        .info("application/dtmf-relay", "Signal=9\nDuration=100")
        .expect_reinvite("sendrecv")  # accepted: the bridge unmutes the legacy phone
        .pause(500)
        .bye()
    )
    with phone_call(daemon, phone, tmp_path, service="strict"):
        page, errors = open_console(browser, daemon, "strict")
        row = page.locator("tr", has_text="Desk Phone 1")
        playwright_sync.expect(row.locator("td.hand")).to_have_text("raised", timeout=10000)
        page.screenshot(path=str(tmp_path / "console-hand.png"), full_page=True)
        page.get_by_role("button", name="Accept the raised hand of Desk Phone 1").click()
        playwright_sync.expect(row.locator("td.audio")).to_have_text("unmuted")
        assert errors == []


def test_the_console_admits_and_denies_waiting_phones(
    browser: Browser, daemon: Daemon, tmp_path: pathlib.Path
) -> None:
    admitted = Phone(name="Guest A").invite(timeout_ms=20000).pause(500).bye()
    denied = Phone(name="Guest B").refused(603, header="Reason: SIP;cause=603", timeout_ms=20000)
    (tmp_path / "b").mkdir()
    with (
        phone_call(daemon, admitted, tmp_path, service="lobby", name="a"),
        phone_call(daemon, denied, tmp_path / "b", service="lobby", name="b"),
    ):
        page, errors = open_console(browser, daemon, "lobby")
        lobby = page.locator("#lobby-list")
        playwright_sync.expect(lobby.locator("li")).to_have_count(2, timeout=10000)
        playwright_sync.expect(page.locator("#lobby-badge")).to_be_visible()
        page.screenshot(path=str(tmp_path / "console-lobby.png"), full_page=True)
        page.get_by_role("button", name="Allow Guest A").click()
        page.get_by_role("button", name="Deny Guest B").click()
        playwright_sync.expect(lobby.locator("li")).to_have_count(0)
        playwright_sync.expect(page.locator("tr", has_text="Guest A")).to_be_visible()
        assert errors == []

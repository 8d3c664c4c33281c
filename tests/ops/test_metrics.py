"""What the mixer's health looks like to Prometheus (``Metrics.watch_mixer``): read at scrape
time from the embedded server, so a scrape during an outage says so without anyone updating it."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import generate_latest

from bridge.ops.metrics import Metrics


@dataclass
class Server:
    """The two facts the embedded server's RunningServer gives (its mixer's state)."""

    mixer_up: bool = True
    mixer_restarts: int = 0


def scrape(metrics: Metrics) -> list[str]:
    text = generate_latest(metrics.registry).decode()
    return [line for line in text.splitlines() if line.startswith("spaces_bridge_mixer")]


def test_the_mixer_gauge_and_restarts_follow_the_server_at_each_scrape() -> None:
    metrics, server = Metrics(), Server()
    metrics.watch_mixer(server)
    assert scrape(metrics) == [
        "spaces_bridge_mixer_up 1.0",
        "spaces_bridge_mixer_restarts_total 0.0",
    ]
    server.mixer_up = False  # Janus died: down until the restart answers
    assert "spaces_bridge_mixer_up 0.0" in scrape(metrics)
    server.mixer_up, server.mixer_restarts = True, 1
    assert scrape(metrics) == [
        "spaces_bridge_mixer_up 1.0",
        "spaces_bridge_mixer_restarts_total 1.0",
    ]


def test_without_a_mixer_nothing_is_exported() -> None:
    assert scrape(Metrics()) == []

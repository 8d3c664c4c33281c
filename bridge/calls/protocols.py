"""What the call layer needs from the media anchor and the loop, as protocols."""

from __future__ import annotations

from typing import Protocol


class MediaPort(Protocol):
    @property
    def port(self) -> int: ...


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Media(Protocol):
    """The media anchor, as the call layer uses it."""

    async def allocate(self, host: str) -> MediaPort: ...

    def release(self, port: MediaPort) -> None: ...

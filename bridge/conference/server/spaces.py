"""The hosted spaces, as every action of the conference rules (:mod:`.state`) finds them: the lookups
each action starts with, which answer 404 for an unknown space or meeting and 409 for an ended one.
The state the actions share (the spaces, the injected ids and clock, the meeting capacity) is made
here, once; the actions themselves are grouped by subject in :mod:`.state`, :mod:`.floor` and
:mod:`.lobby`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..wire import MeetingState
from .config import SpaceConfig
from .dialin import DialIn
from .errors import MeetingEnded, NotFound
from .model import DEFAULT_CAPACITY, Meeting
from .rules import Space


class Spaces:
    """The spaces, their meetings and attendees; what every group of actions is built on."""

    def __init__(
        self,
        spaces: Iterable[SpaceConfig],
        *,
        ids: Callable[[], str],
        now: Callable[[], float],
        capacity: int = DEFAULT_CAPACITY,
    ) -> None:
        spaces = tuple(spaces)
        self._spaces = {s.id: Space(s.id, s.name, s.settings) for s in spaces}
        self.dial_in = DialIn(spaces)
        """Spaces by dial-in ID (the voice menu's routes); fixed, like the spaces."""
        self._ids = ids
        self._now = now
        self._capacity = capacity

    def _space(self, space_id: str) -> Space:
        space = self._spaces.get(space_id)
        if space is None:
            raise NotFound(f"no space {space_id}")
        return space

    def _meeting(self, space: Space, meeting_id: str) -> Meeting:
        meeting = space.meetings.get(meeting_id)
        if meeting is None:
            raise NotFound(f"no meeting {meeting_id} in space {space.id}")
        return meeting

    def _active(self, space: Space, meeting_id: str) -> Meeting:
        meeting = self._meeting(space, meeting_id)
        if meeting.state is MeetingState.ENDED:
            raise MeetingEnded(meeting.id)
        return meeting

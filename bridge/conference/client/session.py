"""The session id of this client process (docs/conference-api.md, Sessions).

Every ``SpacesClient`` and ``SpacesSubscription`` of one process sends the same random id, so the
conference server can tell that process's joins from another node's that share its token, and make
them leave when the process is gone (its socket closed and not back within the server's timeout).
It is made once per process, after a fork too: worker processes are separate nodes to the server.
"""

from __future__ import annotations

import os
import uuid

_current: tuple[int, str] | None = None


def process_session() -> str:
    """This process's session id (uuid4 hex), the same on every call in the process."""
    global _current  # noqa: PLW0603  (one value per process is the point)
    pid = os.getpid()
    if _current is None or _current[0] != pid:
        _current = (pid, uuid.uuid4().hex)
    return _current[1]

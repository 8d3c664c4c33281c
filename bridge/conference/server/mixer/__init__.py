"""The embedded server's media plane (docs/mixer.md): Janus's AudioBridge as a supervised child
process, one room per meeting, one plain-RTP participant per phone attendee and one WebRTC
participant per console that joined the meeting's audio.

``plane.MediaPlane`` is what the server uses; ``janus`` runs the process, ``audiobridge`` speaks its
API, ``config`` writes the files it runs with, ``rooms`` holds what the plane knows of each room,
``events`` routes what Janus tells the plane unasked. Imports only the standard library, aiohttp,
structlog and ``bridge.conference.wire``: the server's rules know nothing of Janus.
"""

from .audiobridge import JanusError
from .config import JanusConfig
from .janus import JanusProcess, JanusUnavailable
from .plane import MediaPlane

__all__ = ["JanusConfig", "JanusError", "JanusProcess", "JanusUnavailable", "MediaPlane"]

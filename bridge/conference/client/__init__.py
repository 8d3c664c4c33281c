"""The bridge's client of the conference server API (docs/conference-api.md).

- :mod:`.client`: ``SpacesClient``, the HTTP calls, with retries for idempotent ones;
- :mod:`.realtime`: ``SpacesSubscription``, the Socket.IO events, reconnecting for ever;
- :mod:`.events`: the typed event values and the pure ``parse_event``;
- :mod:`.models`: the typed API values; :mod:`.errors`: the exception tree.
"""

from .client import SpacesClient
from .realtime import SpacesSubscription

__all__ = ["SpacesClient", "SpacesSubscription"]

"""The INVITE exchanges in progress in each dialog (RFC 3261 §13.3.1.4, §14): one INVITE at a time
in each direction, our 2xx to theirs waiting for its ACK, and the random wait after a glare (491).

Bookkeeping only: the endpoint runs the transactions and asks here what the dialog allows.
"""

from __future__ import annotations

from collections.abc import Callable

from .dialog import Dialog, DialogId, Role
from .entries import ServerEntry
from .errors import RemoteProtocolError


class Invites:
    """INVITE state by dialog; ``random`` draws the §14 waits."""

    __slots__ = ("_awaiting_ack", "_glare", "_incoming", "_outgoing", "_random")

    def __init__(self, random: Callable[[], float]) -> None:
        self._random = random
        self._outgoing: set[DialogId] = set()  # dialogs with our INVITE outstanding (§14.1)
        self._incoming: set[DialogId] = set()  # dialogs with their re-INVITE unanswered (§14.2)
        # INVITE server entries whose 2xx awaits the dialog's ACK, by dialog then CSeq number
        self._awaiting_ack: dict[DialogId, dict[int, ServerEntry]] = {}
        self._glare: dict[DialogId, float] = {}

    def pending(self, dialog_id: DialogId) -> bool:
        """Whether an INVITE is outstanding in either direction or a glare wait is running."""
        return (
            dialog_id in self._outgoing or dialog_id in self._incoming or dialog_id in self._glare
        )

    def forget(self, dialog_id: DialogId) -> None:
        """The dialog ended: nothing of it is awaited any more."""
        self._outgoing.discard(dialog_id)
        self._incoming.discard(dialog_id)
        self._glare.pop(dialog_id, None)
        self._awaiting_ack.pop(dialog_id, None)

    # -- ours ----------------------------------------------------------------------------------------
    def ours_sent(self, dialog_id: DialogId) -> None:
        """Our INVITE went out; the caller checked :meth:`pending` first (§14.1)."""
        self._outgoing.add(dialog_id)

    def ours_done(self, dialog_id: DialogId) -> None:
        """Our INVITE got its final response, or none will come."""
        self._outgoing.discard(dialog_id)

    def glare(self, dialog: Dialog, now: float) -> float:
        """Our INVITE met theirs (491): when to try again. §14.1: the Call-ID owner waits 2.1-4 s,
        the other side 0-2 s, in units of 10 ms."""
        steps = int(self._random() * 200) * 0.01
        wait = 2.1 + steps * 0.95 if dialog.role is Role.UAC else steps
        deadline = now + wait
        self._glare[dialog.id] = deadline
        return deadline

    def glare_deadline(self, dialog_id: DialogId) -> float | None:
        return self._glare.get(dialog_id)

    def glare_over(self, dialog_id: DialogId) -> None:
        del self._glare[dialog_id]

    # -- theirs --------------------------------------------------------------------------------------
    def theirs_received(self, dialog_id: DialogId) -> None:
        """Their re-INVITE arrived: raises :class:`RemoteProtocolError` with the answer when the
        dialog cannot take it now."""
        if dialog_id in self._outgoing:
            raise RemoteProtocolError("re-INVITE glare", status_hint=491)
        if dialog_id in self._incoming:
            # §14.2: a second re-INVITE while one is unanswered gets 500 with Retry-After 0-10.
            retry = str(int(self._random() * 10))
            raise RemoteProtocolError(
                "previous re-INVITE pending",
                status_hint=500,
                extra_headers=(("Retry-After", retry),),
            )
        self._incoming.add(dialog_id)

    def theirs_accepted(self, dialog_id: DialogId, entry: ServerEntry) -> None:
        """We answered their INVITE with 2xx: it now awaits the ACK."""
        self._incoming.discard(dialog_id)
        self._awaiting_ack.setdefault(dialog_id, {})[entry.seq] = entry

    def theirs_rejected(self, dialog_id: DialogId) -> None:
        """We answered their INVITE with a final non-2xx."""
        self._incoming.discard(dialog_id)

    def ack_arrived(self, dialog_id: DialogId, seq: int) -> ServerEntry | None:
        """The INVITE server entry whose 2xx awaited this ACK, no longer waiting."""
        waiting = self._awaiting_ack.get(dialog_id)
        if waiting is None:
            return None
        entry = waiting.pop(seq, None)
        if not waiting:
            del self._awaiting_ack[dialog_id]
        return entry

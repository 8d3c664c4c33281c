"""The SIP endpoint: transactions and dialogs behind one sans-IO interface (docs/architecture.md).

Bytes in: :meth:`Endpoint.receive` ``(data, source, now)``. Bytes out: :meth:`datagrams_to_send`.
Time: :meth:`get_timer` / :meth:`handle_timer`. Results: :meth:`next_event`. Commands from the call
layer (``respond``, ``send_in_dialog``, ``invite``, ``bye``) take ``now`` too. Nothing here reads a
clock, draws a random number or touches a socket: ``token`` and ``random`` are injected.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from .address import Address, Transport
from .config import EndpointConfig
from .dialog import Dialog, DialogId, DialogState
from .entries import Acknowledged, ClientEntry, ServerEntry, origin
from .errors import LocalProtocolError, RemoteProtocolError
from .events import (
    DialogConfirmed,
    DialogTerminated,
    EndReason,
    Event,
    FailureKind,
    GlareRetryDue,
    InviteCancelled,
    MessageRejected,
    RequestFailed,
    RequestReceived,
    ResponseReceived,
    Retransmission,
)
from .invites import Invites
from .message import Request, Response, response_to
from .parser import parse_message
from .timers import TimerHeap
from .transaction import (
    ClientTransaction,
    Kind,
    ServerTransaction,
    State,
    Terminated,
    TimedOut,
    ToTransactionUser,
    Transmit,
    TransportFailed,
    TxOutput,
    client_key,
    invite_key_for_cancel,
    server_key,
)
from .uac import initial_invite
from .uas import (
    at_capacity,
    check_headers,
    check_method,
    check_request,
    check_sips,
    response_destination,
    stamp_via,
    stateless_response,
    wants_sips_contact,
)
from .uri import NameAddr, Uri

DIALOG_METHODS = frozenset({"INVITE", "SUBSCRIBE"})


class Endpoint:
    """A SIP user agent core over any number of transports."""

    def __init__(
        self,
        config: EndpointConfig,
        *,
        token: Callable[[], str],
        random: Callable[[], float],
    ) -> None:
        self.config = config
        self._token = token
        self._server: dict[tuple[object, ...], ServerEntry] = {}
        self._requests: dict[int, ServerEntry] = {}
        # Requests outside a dialog by (Call-ID, From tag, CSeq, method), to spot merged requests
        self._origins: dict[tuple[str, str, int, str], tuple[object, ...]] = {}
        self._acknowledged = Acknowledged()
        self._client: dict[tuple[object, ...], ClientEntry] = {}
        self._dialogs: dict[DialogId, Dialog] = {}
        self._invites = Invites(random)
        self._timers: TimerHeap[DialogId | ServerEntry | ClientEntry] = TimerHeap(self._deadline_of)
        self._out: list[tuple[bytes, Address]] = []
        self._events: deque[Event] = deque()
        self._next_id = 0

    # -- the sans-IO interface ---------------------------------------------------------------------
    def receive(self, data: bytes, source: Address, now: float) -> None:
        try:
            message = parse_message(data, datagram=source.transport is Transport.UDP)
        except RemoteProtocolError as exc:
            self._reject(exc, source, exc.partial if isinstance(exc.partial, Request) else None)
            return
        if isinstance(message, Response):
            self._on_response(message, source, now)
        else:
            self._on_request(message, source, now)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        out, self._out = self._out, []
        return out

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        heap, queue = self._timers.next_deadline(), self._acknowledged.next_deadline()
        return queue if heap is None else heap if queue is None else min(heap, queue)

    def handle_timer(self, now: float) -> None:
        self._acknowledged.expire(now, self._origins)
        while (owner := self._timers.pop_due(now)) is not None:
            if isinstance(owner, DialogId):
                self._invites.glare_over(owner)
                if owner in self._dialogs:
                    self._events.append(GlareRetryDue(owner))
            else:
                self._run(owner, owner.tx.handle_timer(now), now)

    # -- introspection, for the call layer and metrics ---------------------------------------------
    def dialog(self, dialog_id: DialogId) -> Dialog | None:
        return self._dialogs.get(dialog_id)

    @property
    def dialog_count(self) -> int:
        return len(self._dialogs)

    @property
    def client_count(self) -> int:
        """Requests we sent that are still in a client transaction."""
        return len(self._client)

    @property
    def transaction_count(self) -> int:
        return self._server_load + len(self._client)

    @property
    def _server_load(self) -> int:  # an acknowledged INVITE's key is its transaction, absorbing
        return len(self._server) + len(self._acknowledged)

    def invite_pending(self, dialog_id: DialogId) -> bool:
        """Whether an INVITE is outstanding in either direction or a glare wait is running."""
        return self._invites.pending(dialog_id)

    # -- commands ------------------------------------------------------------------------------------
    def respond(
        self,
        request_id: int,
        status: int,
        reason: str | None = None,
        *,
        now: float,
        headers: tuple[tuple[str, str], ...] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> DialogId | None:
        """Answer a request reported by :class:`RequestReceived` (1xx any number of times, one final).

        Returns the dialog the request belongs to or that this response formed, if any."""
        entry = self._requests.get(request_id)
        if entry is None:
            raise LocalProtocolError(f"no request {request_id} awaits a response")
        request = entry.tx.request
        assert request is not None  # released only once the final response is sent
        extra = list(headers)
        forming = request.method in DIALOG_METHODS and 100 < status < 300
        if forming or (request.method == "INVITE" and status < 300):
            secure = wants_sips_contact(request, entry.source)
            extra.append(("Contact", self.config.contact(entry.source.transport, secure=secure)))
        if body and content_type:
            extra.append(("Content-Type", content_type))
        tag = entry.local_tag if status > 100 else None
        response = response_to(request, status, reason, to_tag=tag, headers=tuple(extra), body=body)
        if status >= 200:
            entry.final_sent = True
            del self._requests[request_id]
        if forming:
            self._dialog_answered(entry, request, status)
        elif request.method == "INVITE" and status >= 300:
            self._invite_rejected(entry, request)
        self._run(entry, entry.tx.send_response(response, now), now)
        if status >= 200 and entry.encoded is not None:
            entry.tx.release(entry.encoded[1])
            entry.encoded = None
        return entry.dialog

    def send_in_dialog(
        self,
        dialog_id: DialogId,
        method: str,
        *,
        now: float,
        headers: tuple[tuple[str, str], ...] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> int:
        """Send re-INVITE, INFO, NOTIFY, BYE... in a dialog; the answer comes as ResponseReceived."""
        dialog = self._dialogs.get(dialog_id)
        if dialog is None:
            raise LocalProtocolError(f"no dialog {dialog_id}")
        if method == "INVITE" and self._invites.pending(dialog_id):
            raise LocalProtocolError("an INVITE is already pending in this dialog (RFC 3261 §14.1)")
        hop = dialog.next_hop
        request = dialog.build_request(
            method,
            self.config.via(hop.transport, self._token()),
            headers=headers,
            body=body,
            content_type=content_type,
        )
        if method == "INVITE":
            self._invites.ours_sent(dialog_id)
        elif method == "BYE":
            self._end_dialog(dialog_id, EndReason.BYE_SENT)
        return self._start_client(request, hop, dialog_id, now)

    def transport_failed(self, dest: Address, now: float) -> None:
        """The transport could not send to ``dest`` (no connection, refused): every client
        transaction bound there fails at once (RFC 3261 §17.1.4) instead of waiting for Timer B/F."""
        for entry in [e for e in self._client.values() if e.dest == dest]:
            self._run(entry, entry.tx.transport_error(now), now)

    def forget_dialog(self, dialog_id: DialogId) -> None:
        """End a dialog without a request: a subscription's dialog after its final NOTIFY
        (RFC 6665 §4.4.1). Transactions in flight finish on their own."""
        self._end_dialog(dialog_id, EndReason.FORGOTTEN)

    def bye(self, dialog_id: DialogId, *, now: float) -> int:
        return self.send_in_dialog(dialog_id, "BYE", now=now)

    def _hang_up(self, dialog_id: DialogId, reason: EndReason, now: float) -> None:
        """End a dialog for ``reason`` and send BYE to the peer."""
        dialog = self._dialogs.get(dialog_id)
        if dialog is None:
            return
        self._end_dialog(dialog_id, reason)
        hop = dialog.next_hop
        request = dialog.build_request("BYE", self.config.via(hop.transport, self._token()))
        self._start_client(request, hop, dialog_id, now)

    def invite(
        self,
        uri: Uri,
        *,
        peer: Address,
        from_: NameAddr,
        to: NameAddr,
        now: float,
        headers: tuple[tuple[str, str], ...] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> int:
        """Start a call as UAC (RFC 3261 §13.2.1); dialogs form from its 1xx/2xx responses."""
        request = initial_invite(
            self.config, self._token, uri, peer.transport, from_=from_, to=to, headers=headers,
            body=body, content_type=content_type,
        )  # fmt: skip
        return self._start_client(request, peer, None, now)

    # -- requests ----------------------------------------------------------------------------------
    def _on_request(self, request: Request, source: Address, now: float) -> None:
        try:
            check_headers(request)
        except RemoteProtocolError as exc:
            self._reject(exc, source, request)
            return
        stamp_via(request, source)
        key = server_key(request)
        entry = self._server.get(key)
        if entry is not None and request.method != "ACK":
            self._events.append(Retransmission(source, request.method))
            self._run(entry, entry.tx.receive_request(request, now), now)
            return
        if key in self._acknowledged and request.method != "ACK":
            self._events.append(Retransmission(source, request.method))
            return  # the INVITE of a call already acknowledged: absorbed (RFC 6026 §7.1)
        if request.method == "ACK":
            self._on_ack(request, entry, now)
            return
        try:
            check_method(request, self.config.policy)
            if request.method == "CANCEL":
                self._on_cancel(request, source, now)
                return
            check_request(request, self.config.policy)
            check_sips(request, source)
        except RemoteProtocolError as exc:
            self._answer_error(request, source, exc, now)
            return
        if request.to.tag is not None:
            self._on_in_dialog(request, source, now)
            return
        if self._merged(request, key):
            self._answer_error(request, source, RemoteProtocolError("loop", status_hint=482), now)
            return
        if self._server_load >= self.config.max_transactions or (
            request.method == "INVITE" and len(self._dialogs) >= self.config.max_dialogs
        ):
            # New work is refused before it costs memory; requests in dialogs (BYE) still pass.
            self._answer_error(request, source, at_capacity(self.config.retry_after), now)
            return
        self._new_server(request, source, None, now)

    def _on_ack(self, ack: Request, entry: ServerEntry | None, now: float) -> None:
        if entry is not None and entry.tx.state is not State.ACCEPTED:
            # The ACK of a non-2xx final shares the INVITE's branch (§17.1.1.3); an ACK for a 2xx
            # that reuses the INVITE's branch (RFC 2543 style) belongs to the dialog instead.
            self._run(entry, entry.tx.receive_request(ack, now), now)
            return
        tag = ack.to.tag
        from_tag = ack.from_.tag or ""
        if tag is None:
            return  # no dialog, no transaction: discard (§17.2.3)
        dialog_id = DialogId(ack.call_id, tag, from_tag)
        waiting = self._invites.ack_arrived(dialog_id, ack.cseq.seq)
        if waiting is None:
            return  # a retransmitted ACK, or one for a dialog we no longer have
        outputs = waiting.tx.ack_2xx(now)
        if not self._acknowledged.take_over(waiting, self._server):
            self._run(waiting, outputs, now)
        dialog = self._dialogs.get(dialog_id)
        if dialog is not None:
            dialog.state = DialogState.CONFIRMED
            self._events.append(DialogConfirmed(dialog_id, ack))

    def _on_cancel(self, cancel: Request, source: Address, now: float) -> None:
        key = invite_key_for_cancel(cancel)
        invite = self._server.get(key)
        # An INVITE answered and acknowledged is still there to cancel, too late to matter (§9.2).
        known = (
            key in self._acknowledged if invite is None else invite.tx.kind is Kind.INVITE_SERVER
        )
        if not known:
            exc = RemoteProtocolError("no transaction to cancel", status_hint=481)
            self._answer_error(cancel, source, exc, now)
            return
        entry = self._new_server(cancel, source, None, now, report=False)
        self.respond(entry.request_id, 200, now=now)
        if invite is None:
            return  # acknowledged: nothing left to cancel
        request = invite.tx.request
        if not invite.final_sent and request is not None:
            self.respond(invite.request_id, 487, now=now)
            self._events.append(InviteCancelled(invite.request_id, request))

    def _on_in_dialog(self, request: Request, source: Address, now: float) -> None:
        dialog_id = DialogId(request.call_id, request.to.tag or "", request.from_.tag or "")
        dialog = self._dialogs.get(dialog_id)
        if dialog is None:
            exc = RemoteProtocolError("no such dialog", status_hint=481)
            self._answer_error(request, source, exc, now)
            return
        if not dialog.accept_remote_cseq(request):
            exc = RemoteProtocolError("CSeq out of order", status_hint=500)
            self._answer_error(request, source, exc, now)
            return
        if request.method == "INVITE":
            try:
                self._invites.theirs_received(dialog_id)
            except RemoteProtocolError as exc:
                self._answer_error(request, source, exc, now)
                return
        entry = self._new_server(request, source, dialog_id, now, report=request.method != "BYE")
        if request.method == "BYE":
            self.respond(entry.request_id, 200, now=now)
            self._end_dialog(dialog_id, EndReason.BYE_RECEIVED, request)

    def _merged(self, request: Request, key: tuple[object, ...]) -> bool:
        """§8.2.2.2: same From tag, Call-ID and CSeq as a live transaction, other branch → 482."""
        other = self._origins.get(origin(request))
        live = other is not None and (other in self._server or other in self._acknowledged)
        return live and other != key

    def _new_server(
        self,
        request: Request,
        source: Address,
        dialog_id: DialogId | None,
        now: float,
        *,
        report: bool = True,
        trying: bool = True,
    ) -> ServerEntry:
        tx = ServerTransaction(
            request, reliable=source.transport.reliable, now=now, timers=self.config.timers
        )
        self._next_id += 1
        entry = ServerEntry(
            tx=tx,
            request_id=self._next_id,
            dest=response_destination(source, request.top_via),
            source=source,
            local_tag=request.to.tag or self._token(),
            seq=request.cseq.seq,
            dialog=dialog_id,
        )
        self._server[tx.key] = entry
        self._requests[entry.request_id] = entry
        if request.to.tag is None and request.from_.tag is not None:
            entry.origin = origin(request)
            self._origins[entry.origin] = tx.key
        if trying and request.method == "INVITE":
            # Answer 100 at once: the call layer may wait on the conference server (§17.2.1).
            self.respond(entry.request_id, 100, now=now)
        if report:
            self._events.append(RequestReceived(entry.request_id, request, source, dialog_id))
        return entry

    def _answer_error(
        self, request: Request, source: Address, exc: RemoteProtocolError, now: float
    ) -> None:
        if self._server_load >= self.config.max_transactions:
            self._reject(exc, source, request)
            return
        entry = self._new_server(request, source, None, now, report=False, trying=False)
        self._events.append(MessageRejected(source, exc.reason, exc.status_hint))
        if entry.request_id in self._requests:
            self.respond(
                entry.request_id, exc.status_hint, exc.reason, now=now, headers=exc.extra_headers
            )

    def _reject(self, exc: RemoteProtocolError, source: Address, request: Request | None) -> None:
        """Stateless answer to what could not be parsed or checked, when it can be routed."""
        datagram = stateless_response(exc, source, request, agent=self.config.agent)
        if datagram is None:
            self._events.append(MessageRejected(source, exc.reason, None))
            return
        self._out.append(datagram)
        self._events.append(MessageRejected(source, exc.reason, exc.status_hint))

    # -- dialogs -------------------------------------------------------------------------------------
    def _dialog_answered(self, entry: ServerEntry, request: Request, status: int) -> None:
        if entry.dialog is None:
            secure = wants_sips_contact(request, entry.source)
            contact = self.config.contact(entry.source.transport, secure=secure)
            dialog = Dialog.for_uas(request, entry.local_tag, entry.source, contact)
            if dialog.id not in self._dialogs:
                self._dialogs[dialog.id] = dialog
            entry.dialog = dialog.id
        dialog_or_none = self._dialogs.get(entry.dialog)
        if dialog_or_none is None:
            return
        if status >= 200:
            dialog_or_none.state = DialogState.CONFIRMED
            dialog_or_none.refresh_target(request)
            if request.method == "INVITE":
                self._invites.theirs_accepted(entry.dialog, entry)

    def _invite_rejected(self, entry: ServerEntry, request: Request) -> None:
        if entry.dialog is None:
            return
        self._invites.theirs_rejected(entry.dialog)
        dialog = self._dialogs.get(entry.dialog)
        if dialog is not None and dialog.state is DialogState.EARLY:
            del self._dialogs[entry.dialog]  # an early dialog dies with the final non-2xx (§12.3)

    def _end_dialog(
        self, dialog_id: DialogId, reason: EndReason, request: Request | None = None
    ) -> None:
        dialog = self._dialogs.pop(dialog_id, None)
        if dialog is None:
            return
        dialog.state = DialogState.TERMINATED
        self._invites.forget(dialog_id)
        self._events.append(DialogTerminated(dialog_id, reason, request))

    # -- client side ---------------------------------------------------------------------------------
    def _start_client(
        self, request: Request, dest: Address, dialog_id: DialogId | None, now: float
    ) -> int:
        tx = ClientTransaction(
            request, reliable=dest.transport.reliable, now=now, timers=self.config.timers
        )
        self._next_id += 1
        entry = ClientEntry(tx=tx, request_id=self._next_id, dest=dest, dialog=dialog_id)
        self._client[tx.key] = entry
        self._run(entry, tx.start(now), now)
        return entry.request_id

    def _on_response(self, response: Response, source: Address, now: float) -> None:
        try:
            key = client_key(response)  # reads the top Via and CSeq: unreadable ones raise
        except RemoteProtocolError as exc:
            self._events.append(MessageRejected(source, exc.reason, None))
            return
        entry = self._client.get(key)
        if entry is None:
            self._events.append(MessageRejected(source, "stray response", None))
            return
        self._run(entry, entry.tx.receive_response(response, now), now)

    def _deliver(self, entry: ClientEntry, response: Response, now: float) -> None:
        request = entry.tx.request
        status = response.status
        if request.method == "INVITE" and 200 <= status < 300 and entry.ack is not None:
            self._out.append((entry.ack, entry.dest))  # a retransmitted 2xx: ACK again (§13.2.2.4)
            return
        forming = request.method in DIALOG_METHODS and entry.dialog is None and 100 < status < 300
        if forming and response.to.tag is not None:
            formed = Dialog.for_uac(
                request, response, entry.dest, self.config.contact(entry.dest.transport)
            )
            self._dialogs.setdefault(formed.id, formed)
            entry.dialog = formed.id
        dialog_id = entry.dialog
        dialog = self._dialogs.get(dialog_id) if dialog_id is not None else None
        if request.method == "INVITE" and status >= 200:
            if dialog_id is not None:
                self._invites.ours_done(dialog_id)
            if status < 300 and dialog is not None:
                dialog.state = DialogState.CONFIRMED
                dialog.refresh_target(response)
                ack = dialog.build_request(
                    "ACK",
                    self.config.via(entry.dest.transport, self._token()),
                    cseq=request.cseq.seq,
                )
                entry.ack = ack.encode()
                self._out.append((entry.ack, entry.dest))
            elif status == 491 and dialog is not None:
                self._timers.push(self._invites.glare(dialog, now), dialog.id)
            elif dialog is not None and dialog.state is DialogState.EARLY:
                self._end_dialog(dialog.id, EndReason.REJECTED)
        self._events.append(ResponseReceived(entry.request_id, response, dialog_id))
        if dialog_id is not None and status in (408, 481) and request.method != "BYE":
            self._end_dialog(dialog_id, EndReason.TIMEOUT)  # §12.2.1.2

    def _failed(self, entry: ClientEntry, kind: FailureKind, now: float) -> None:
        self._events.append(RequestFailed(entry.request_id, kind, entry.dialog))
        request = entry.tx.request
        if entry.dialog is None:
            return
        if request.method == "INVITE":
            self._invites.ours_done(entry.dialog)
        if request.method != "BYE":
            # §12.2.1.2: no answer inside a dialog ends it; tell a live-but-confused peer too.
            self._hang_up(entry.dialog, EndReason.TIMEOUT, now)

    # -- plumbing ------------------------------------------------------------------------------------
    def _run(self, entry: ServerEntry | ClientEntry, outputs: list[TxOutput], now: float) -> None:
        for output in outputs:
            match output:
                case Transmit(message=message):
                    self._transmit(entry, message)
                case ToTransactionUser(message=message):
                    if isinstance(entry, ClientEntry) and isinstance(message, Response):
                        self._deliver(entry, message, now)
                case TimedOut():
                    self._timed_out(entry, now)
                case TransportFailed():
                    if isinstance(entry, ClientEntry):
                        self._failed(entry, FailureKind.TRANSPORT, now)
                case Terminated():
                    self._forget(entry)
        if entry.tx.state is not State.TERMINATED:
            deadline = entry.tx.next_deadline()
            if deadline is not None:
                self._timers.push(deadline, entry)

    def _timed_out(self, entry: ServerEntry | ClientEntry, now: float) -> None:
        if isinstance(entry, ClientEntry):
            self._failed(entry, FailureKind.TIMEOUT, now)
            return
        dialog_id = entry.dialog
        if dialog_id is None or entry.tx.kind is not Kind.INVITE_SERVER:
            return
        if self._invites.ack_arrived(dialog_id, entry.seq) is not None:
            # §13.3.1.4: a 2xx never acknowledged ends the session with BYE.
            self._hang_up(dialog_id, EndReason.NO_ACK, now)

    def _transmit(
        self, entry: ServerEntry | ClientEntry, message: Request | Response | bytes
    ) -> None:
        if isinstance(message, bytes):
            self._out.append((message, entry.dest))
            return
        cached = entry.encoded
        if cached is not None and cached[0] is message:
            data = cached[1]  # retransmission: the bytes we already wrote
        else:
            data = message.encode()
            entry.encoded = (message, data)
        self._out.append((data, entry.dest))

    def _forget(self, entry: ServerEntry | ClientEntry) -> None:
        if isinstance(entry, ServerEntry):
            if self._server.get(entry.tx.key) is entry:
                del self._server[entry.tx.key]
            self._requests.pop(entry.request_id, None)
            if entry.origin is not None and self._origins.get(entry.origin) == entry.tx.key:
                del self._origins[entry.origin]
        elif self._client.get(entry.tx.key) is entry:
            del self._client[entry.tx.key]

    def _deadline_of(self, owner: DialogId | ServerEntry | ClientEntry) -> float | None:
        if isinstance(owner, DialogId):
            return self._invites.glare_deadline(owner)
        if owner.tx.state is State.TERMINATED:
            return None
        return owner.tx.next_deadline()


__all__ = ["Endpoint", "EndpointConfig"]

"""sipp scenarios built from steps, for the meeting tests: a phone's side of a call, step by step.

    Phone().invite(answer="sendonly").ack().expect_reinvite("sendrecv").bye()

Each ``expect_*`` step fails the sipp run (exit code non-zero) when the bridge sends something else,
and every regex check is asserted (``check_it``). Requests after a re-INVITE from the bridge use the
dialog's saved To (sipp's ``[last_To:]`` would then be the phone's own).
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass, field

_FROM = (
    'From: "{name}" <sip:phone[call_number]@[local_ip]:[local_port]>'
    ";tag=[pid]SIPpTag00[call_number]"
)
_CONTACT = "Contact: <sip:phone[call_number]@[local_ip]:[local_port];transport=[transport]>"
_VIA = "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport"


def _sdp(direction: str, version: int) -> str:
    return (
        f"v=0\no=phone 53655765 {version} IN IP[local_ip_type] [local_ip]\ns=-\n"
        "c=IN IP[media_ip_type] [media_ip]\nt=0 0\nm=audio [media_port] RTP/AVP 0 101\n"
        "a=rtpmap:0 PCMU/8000\na=rtpmap:101 telephone-event/8000\n"
        f"a={direction}\n"
    )


def _cdata(text: str) -> str:
    """The message of a ``<send>`` step, and the step's end."""
    return f"    <![CDATA[\n{text}\n    ]]>\n  </send>\n"


@dataclass
class Phone:
    """One sipp caller; ``[vh]`` is the version header line given with ``-key vh``."""

    name: str = "Desk Phone 1"
    """The display name, which the bridge gives the attendee."""
    steps: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    cseq: int = 1
    sdp_version: int = 1
    recv_info: str | None = None
    """The INVITE's ``Recv-Info`` (RFC 6086): the INFO packages the phone takes; None: no header."""

    def _check(self, regexp: str, where: str = "body", *, absent: bool = False) -> str:
        name = f"c{len(self.checks)}"
        self.checks.append(name)
        check = "check_it_inverse" if absent else "check_it"
        return (
            f'      <ereg regexp="{regexp}" search_in="{where}" {check}="true" '
            f'assign_to="{name}"/>\n'
        )

    def _request(self, method: str, lines: list[str], body: str = "", ctype: str = "") -> str:
        head = [
            f"{method} [next_url] SIP/2.0",
            _VIA,
            _FROM.format(name=self.name),
            "To:[$to]",
            "[routes]",
            "Call-ID: [call_id]",
            f"CSeq: {self.cseq} {method}",
            _CONTACT,
            "Max-Forwards: 70",
            *lines,
        ]
        if ctype:
            head.append(f"Content-Type: {ctype}")
        head.append("Content-Length: [len]")
        return "\n".join(head) + "\n\n" + body

    def _send_invite(self) -> None:
        text = "\n".join(
            [
                "INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0",
                _VIA,
                _FROM.format(name=self.name),
                "To: <sip:[service]@[remote_ip]:[remote_port]>",
                "Call-ID: [call_id]",
                "CSeq: 1 INVITE",
                _CONTACT,
                "Max-Forwards: 70",
                "[vh]",
                *([] if self.recv_info is None else [f"Recv-Info: {self.recv_info}"]),
                "Content-Type: application/sdp",
                "Content-Length: [len]",
            ]
        )
        self.steps.append('  <send retrans="500">\n' + _cdata(text + "\n\n" + _sdp("sendrecv", 1)))
        self.steps.append('  <recv response="100" optional="true"/>\n')
        self.steps.append('  <recv response="180" optional="true"/>\n')
        # A lobby plays its waiting prompt as early media (183 with SDP) instead of ringing.
        self.steps.append('  <recv response="183" optional="true"/>\n')

    def invite(self, *, answer: str = "sendrecv", timeout_ms: int = 10000) -> Phone:
        """INVITE with a sendrecv offer; expect 200 whose audio direction is ``answer``, and which
        lists the bridge's INFO package in ``Recv-Info`` (RFC 6086 §5.2.2)."""
        self._send_invite()
        self.checks.append("to")
        to = '      <ereg regexp=".*" search_in="hdr" header="To:" check_it="true" assign_to="to"/>\n'
        recv_info = self._check("Recv-Info: *spaces-bridge", "msg")
        self.steps.append(
            f'  <recv response="200" rrs="true" timeout="{timeout_ms}">\n'
            f"    <action>\n{to}{self._check(f'a={answer}')}{recv_info}    </action>\n  </recv>\n"
        )
        return self.ack()

    def refused(self, status: int, *, header: str | None = None, timeout_ms: int = 10000) -> Phone:
        """INVITE answered by ``status`` (after optional 180s); ``header`` is a regex on it."""
        self._send_invite()
        action = ""
        if header is not None:
            action = f"    <action>\n{self._check(header, 'msg')}    </action>\n"
        self.steps.append(
            f'  <recv response="{status}" timeout="{timeout_ms}">\n{action}  </recv>\n'
        )
        ack = "\n".join(
            [
                "ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0",
                "[last_Via:]",
                _FROM.format(name=self.name),
                "[last_To:]",
                "Call-ID: [call_id]",
                "CSeq: 1 ACK",
                "Max-Forwards: 70",
                "Content-Length: 0",
            ]
        )
        self.steps.append("  <send>\n" + _cdata(ack + "\n"))
        return self

    def ack(self) -> Phone:
        self.steps.append("  <send>\n" + _cdata(self._request("ACK", [])))
        return self

    def reinvite(self, direction: str, *, answer: str) -> Phone:
        """Our re-offer with ``direction``; expect the bridge's answer to say ``answer``."""
        self.cseq += 1
        self.sdp_version += 1
        body = _sdp(direction, self.sdp_version)
        text = self._request("INVITE", [], body, "application/sdp")
        self.steps.append('  <send retrans="500">\n' + _cdata(text))
        self.steps.append('  <recv response="100" optional="true"/>\n')
        self.steps.append(
            f'  <recv response="200">\n    <action>\n{self._check(f"a={answer}")}'
            "    </action>\n  </recv>\n"
        )
        return self.ack()

    def expect_reinvite(self, direction: str, *, timeout_ms: int = 10000) -> Phone:
        """The bridge re-offers with ``direction``; answer it the RFC 3264 way and await the ACK."""
        answer = {"sendonly": "recvonly", "sendrecv": "sendrecv", "inactive": "inactive"}[direction]
        self.sdp_version += 1
        self.steps.append(
            f'  <recv request="INVITE" timeout="{timeout_ms}">\n'
            f"    <action>\n{self._check(f'a={direction}')}    </action>\n  </recv>\n"
        )
        self._answer_last(_sdp(answer, self.sdp_version), "application/sdp")
        self.steps.append('  <recv request="ACK"/>\n')
        return self

    def expect_info(
        self, regexp: str, *, package: bool | None = None, timeout_ms: int = 10000
    ) -> Phone:
        """An INFO from the bridge whose body matches ``regexp``; answered 200. ``package``: it
        must (True) or must not (False) name the INFO package in ``Info-Package``."""
        named = ""
        if package is not None:
            named = self._check("Info-Package: *spaces-bridge", "msg", absent=not package)
        self.steps.append(
            f'  <recv request="INFO" timeout="{timeout_ms}">\n'
            f"    <action>\n{self._check(regexp)}{named}    </action>\n  </recv>\n"
        )
        self._answer_last("", "")
        return self

    def expect_bye(self, *, timeout_ms: int = 10000, check: str | None = None) -> Phone:
        """A BYE from the bridge; ``check`` is a regex on the whole message."""
        action = f"    <action>\n{self._check(check, 'msg')}    </action>\n" if check else ""
        self.steps.append(f'  <recv request="BYE" timeout="{timeout_ms}">\n{action}  </recv>\n')
        self._answer_last("", "")
        return self

    def info(
        self,
        ctype: str,
        body: str,
        *,
        status: int = 200,
        header: str | None = None,
        lines: tuple[str, ...] = (),
    ) -> Phone:
        """An INFO (with header ``lines``) answered by ``status``; ``header`` is a regex on the
        whole response."""
        self.cseq += 1
        text = self._request("INFO", list(lines), body + "\n", ctype)
        self.steps.append('  <send retrans="500">\n' + _cdata(text))
        if header is None:
            self.steps.append(f'  <recv response="{status}"/>\n')
        else:
            action = f"    <action>\n{self._check(header, 'msg')}    </action>\n"
            self.steps.append(f'  <recv response="{status}">\n{action}  </recv>\n')
        return self

    def pause(self, ms: int) -> Phone:
        self.steps.append(f'  <pause milliseconds="{ms}"/>\n')
        return self

    def bye(self) -> Phone:
        self.cseq += 1
        self.steps.append('  <send retrans="500">\n' + _cdata(self._request("BYE", [])))
        self.steps.append('  <recv response="200" crlf="true"/>\n')
        return self

    def _answer_last(self, body: str, ctype: str) -> None:
        lines = [
            "SIP/2.0 200 OK",
            "[last_Via:]",
            "[last_From:]",
            "[last_To:]",
            "[last_Call-ID:]",
            "[last_CSeq:]",
            _CONTACT,
        ]
        if ctype:
            lines.append(f"Content-Type: {ctype}")
        lines.append("Content-Length: [len]")
        self.steps.append("  <send>\n" + _cdata("\n".join(lines) + "\n\n" + body))

    def write(self, path: pathlib.Path) -> pathlib.Path:
        refs = f'  <Reference variables="{",".join(self.checks)}"/>\n' if self.checks else ""
        path.write_text(
            '<?xml version="1.0" encoding="UTF-8" ?>\n<scenario name="phone">\n'
            + "".join(self.steps)
            + refs
            + "</scenario>\n"
        )
        return path

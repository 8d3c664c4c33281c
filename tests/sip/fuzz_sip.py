"""Coverage-guided fuzzing of the SIP parser and stream framer with atheris (libFuzzer).

Run directly for a long session, seeded with the RFC 4475 messages::

    .venv/bin/python tests/sip/fuzz_sip.py CORPUS_DIR -max_total_time=3600

Every input must end as a parsed message or the documented ``RemoteProtocolError``; anything else
is a crash that libFuzzer saves as ``crash-<sha1>`` for replay (``fuzz_sip.py crash-<sha1>``).
``test_fuzz_atheris.py`` runs this target for a bounded time in the test suite.
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports(include=["bridge.sip"]):
    from bridge.sip.errors import RemoteProtocolError
    from bridge.sip.parser import StreamFramer, parse_message


def one_input(data: bytes) -> None:
    if not data:
        return
    # The first byte picks the path and the cut size, so one corpus exercises both.
    mode, rest = data[0], data[1:]
    if mode & 1:
        with contextlib.suppress(RemoteProtocolError):
            parse_message(rest, datagram=bool(mode & 2))
        return
    framer = StreamFramer()
    cut = (mode >> 1) + 1
    with contextlib.suppress(RemoteProtocolError):  # the connection would be closed
        for at in range(0, len(rest), cut):
            framer.feed(rest[at : at + cut])
            while (frame := framer.next_frame()) is not None:
                if isinstance(frame, bytes):
                    parse_message(frame, datagram=False)


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

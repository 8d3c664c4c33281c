"""A call's objects are freed by reference counting, not by the cyclic garbage collector.

The daemon runs the collector's full passes minutes apart (``bridge/app.py:GC_THRESHOLDS``): a
reference cycle made per call would hold that call's memory until then, and make those passes
longer. Real calls from sipp (DTMF INFO mutes, re-INVITE hold, plain calls) go through the daemon's
parts in-process; then what the collector finds unreachable must hold none of our objects.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import pathlib
import time

from bridge.app import Bridge
from bridge.config import load
from tests.interop.harness import LOOPBACK, Daemon, explain, free_port, sipp


def ours(objects: list[object]) -> collections.Counter[str]:
    return collections.Counter(
        f"{type(o).__module__}.{type(o).__qualname__}"
        for o in objects
        if type(o).__module__.startswith("bridge.")
    )


def test_calls_leave_no_reference_cycles(tmp_path: pathlib.Path) -> None:
    port = free_port()
    media = free_port(both=False) & ~1
    config = tmp_path / "bridge.toml"
    config.write_text(
        f'[sip]\nlisten = ["udp:{LOOPBACK}:{port}"]\n'
        f'[media]\nhost = "{LOOPBACK}"\nport_min = {media}\nport_max = {media + 100}\n'
        f'[ops]\nlisten = "{LOOPBACK}:{free_port()}"\n[server]\nport = 0\n'
    )
    peer = Daemon(workdir=tmp_path, port=port)  # only where sipp sends: the daemon runs here

    async def main() -> collections.Counter[str]:
        bridge = Bridge(load(config), asyncio.get_running_loop())
        await bridge.start()
        try:
            gc.collect()  # start-up's own garbage is not the calls'
            gc.set_debug(gc.DEBUG_SAVEALL)
            for scenario in ("info_dtmf.xml", "reinvite_hold.xml", "call.xml"):
                result = await asyncio.to_thread(
                    sipp, peer, scenario, workdir=tmp_path, calls=4, rate=20
                )
                assert result.returncode == 0, explain(result, peer, tmp_path)
            deadline = time.monotonic() + 10
            while bridge.active and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert bridge.active == 0
            gc.collect()
            return ours(gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            await bridge.close()

    found = asyncio.run(main())
    assert not found, f"objects freed only by the cyclic collector: {found.most_common(10)}"


def test_the_check_sees_a_cycle() -> None:
    """The check above would notice: a call-layer object in a cycle is reported."""
    from bridge.sip.dialog import DialogId

    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        holder: list[object] = [DialogId("c", "l", "r")]
        holder.append(holder)
        del holder
        gc.collect()
        found = ours(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert found == {"bridge.sip.dialog.DialogId": 1}

"""`mm bench latency --pin` placement: configured cores win, the rest go one per core in order."""

from __future__ import annotations

import os

import msgspec

from mm.config import PROCESS_NAMES, load_config
from processes.actor import core_for
from processes.latency_bench import placement


def _with_cpus(**cpus: int):
    base = load_config()
    return msgspec.structs.replace(base, **{name: msgspec.structs.replace(getattr(base, name), cpu=cpu)
                                            for name, cpu in cpus.items()})


def test_unpinned_without_pin_whatever_the_config_says():
    assert placement(_with_cpus(book=0), pin=False) == {name: -1 for name in PROCESS_NAMES}


def test_pin_without_configured_cores_goes_one_core_each_in_order():
    cores = sorted(os.sched_getaffinity(0))
    assert placement(load_config(), pin=True) == {name: cores[i % len(cores)] for i, name in enumerate(PROCESS_NAMES)}


def test_pin_keeps_the_configured_cores_and_fills_in_the_rest():
    cores = sorted(os.sched_getaffinity(0))
    first = cores[0]
    got = placement(_with_cpus(feed=first, book=first, quoter=first, risk=first), pin=True)
    assert [got[name] for name in ("feed", "book", "quoter", "risk")] == [first] * 4
    assert got["signal"] == cores[2 % len(cores)] and got["gateway"] == cores[5 % len(cores)]


def test_a_configured_core_this_host_lacks_lands_on_one_it_has():
    assert core_for(3, [0, 1]) == 1 and core_for(4, [0, 1]) == 0 and core_for(1, [0, 1]) == 1

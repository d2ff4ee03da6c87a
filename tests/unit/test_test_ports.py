"""The ports the test servers take: each worker of ``pytest -n`` has its own, outside the range
the kernel hands out by itself."""

from __future__ import annotations

import socket

from tests.ports import FIRST, free_ports, worker_slice


def test_the_workers_slices_are_disjoint_and_below_the_ephemeral_range() -> None:
    slices = [worker_slice(f"gw{n}", "2", end=32768) for n in range(2)]
    assert slices[0].start == FIRST and slices[1].stop <= 32768
    assert not set(slices[0]) & set(slices[1])
    assert worker_slice("", "1", end=32768) == range(FIRST, 32768)  # no workers: the whole block
    assert worker_slice("gw3", "4", end=32768).stop <= 32768


def test_a_worker_never_hands_out_a_port_twice_in_a_row_nor_one_that_is_taken() -> None:
    with socket.socket() as held:
        first = free_ports(1)[0]
        held.bind(("127.0.0.1", first))
        held.listen()
        following = free_ports(50)
    assert first not in following and len(set(following)) == 50
    assert all(port in worker_slice() for port in [first, *following])

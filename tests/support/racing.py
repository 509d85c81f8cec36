"""Racing threads against one another, with a reader watching what they publish."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor


def race_with_a_reader(work: Callable[[], object], racers: int, size_now: Callable[[], int | None],
                       size: int) -> tuple[list[object], list[int]]:
    """``racers`` threads run ``work`` at once (each returns what it returned, or the exception it
    raised) while another thread keeps looking at the published result: ``size_now()`` is its
    size, None while there is none. Returns the outcomes, and the sizes seen other than ``size``."""
    start = threading.Barrier(racers + 1)
    stop = threading.Event()
    wrong_sizes: list[int] = []

    def run(_: int) -> object:
        start.wait()
        try:
            return work()
        except Exception as exc:
            return exc

    def watch() -> None:
        start.wait()
        while not stop.is_set():
            got = size_now()
            if got is not None and got != size:
                wrong_sizes.append(got)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(racers) as pool:
            outcomes = list(pool.map(run, range(racers)))
    finally:
        stop.set()
        watcher.join()
    return outcomes, wrong_sizes

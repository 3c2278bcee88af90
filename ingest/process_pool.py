"""Worker processes that start clean wherever the pipeline runs: ``ingest run``, a user's
script, an Airflow task or a Celery worker.

multiprocessing's forkserver and spawn children run the parent's main script again (as
``__mp_main__``) before their first job. Inside an Airflow task that script is Airflow's
own ``airflow`` command, and importing Airflow there fails: a task's environment hides the
metadata database from it. In a user's script without an ``if __name__ == "__main__":``
guard it would run the whole pipeline again. Our workers only ever run functions of this
package, so they are started as if the parent had no main script.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import select
import sys
import threading
import time
import types
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing.context import ForkServerContext, ForkServerProcess
from typing import Any

_WATCH_SECONDS = 1.0  # how often a worker checks that the process it works for is alive


@contextmanager
def _no_main_script() -> Iterator[None]:
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")  # no __file__, no __spec__: nothing for the child to re-run
    try:
        yield
    finally:
        sys.modules["__main__"] = main


class _CleanProcess(ForkServerProcess):
    @staticmethod
    def _Popen(process_obj: Any) -> Any:  # noqa: N802 - multiprocessing's name
        with _no_main_script():
            return ForkServerProcess._Popen(process_obj)


class _CleanForkServer(ForkServerContext):
    Process = _CleanProcess  # type: ignore[assignment]


def _start_worker(parent: int) -> None:
    """Pool initializer. The objects the worker inherits from the forkserver (the preloaded
    modules) leave the garbage collector's view (``gc.freeze``, which only splices lists):
    each full collection wrote to every one of them and copied their pages into the worker
    (on a 20,000-page pass the workers and the forkserver grew from 81 to 97 MiB; with
    the freeze they stay at 81). Then ``_leave_with(parent)``."""
    gc.freeze()
    _leave_with(parent)


def _leave_with(parent: int) -> None:
    """The worker exits once ``parent`` is gone. A worker waits for jobs on
    a queue it also holds a writing end of, so it never sees the end of it: a parent killed
    outright (SIGKILL, an out-of-memory kill, a task timeout) left its workers running for
    good, about 100 MB each, and the forkserver (their parent) does not end them."""

    def watch() -> None:
        try:
            handle = os.pidfd_open(parent)  # Linux 5.3+: readable once that process, not its pid, is gone
        except (AttributeError, OSError):
            handle = None
        if handle is not None:
            select.select([handle], [], [])
            os._exit(1)
        while True:  # elsewhere, poll the pid (a pid reused by another user's process also means gone)
            time.sleep(_WATCH_SECONDS)
            try:
                os.kill(parent, 0)
            except (ProcessLookupError, PermissionError):
                os._exit(1)

    threading.Thread(target=watch, name="leave-with-parent", daemon=True).start()


def process_pool(workers: int, preload: Sequence[str] = ()) -> ProcessPoolExecutor | None:
    """A forkserver pool (children do not copy a process with threads and open sockets) whose
    children skip the main script and leave when this process is gone; None where this
    process may not have children (a daemonic worker process). The forkserver imports the
    ``preload`` modules once, and its children start with them, sharing their pages: a
    process started for each core no longer imports them again."""
    if multiprocessing.current_process().daemon:
        return None
    context = _CleanForkServer()
    context.set_forkserver_preload(list(preload))
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_start_worker, initargs=(os.getpid(),))

"""Requests read together: a queue of jobs, each the pages of one upload, taken by worker threads.

A worker takes the first job waiting and every other job that asks for the same reading options, and reads all
their pages in one :meth:`htrlab.read.Reader.read_sources` call: their lines share batches, so eight clients
sending one line each cost about one batch of eight, not eight batches of one. The queue has a fixed length; a
full queue is refused at once (the server answers 503), never waited on without bound.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from htrlab.read.reader import Page, Reader, Source


class QueueFull(Exception):
    """Every place in the queue is taken."""


@dataclass
class Job:
    """The pages of one request, how to read them, and where the result goes."""

    sources: list[Source]
    options: tuple[str, str, str]  # (decoder: "default" or "greedy", layout, orientation)
    result: Future[list[Page]] = field(default_factory=Future)


class BatchWorker:
    """Worker threads reading jobs from one bounded queue with ``readers`` (``"default"``: the model with its
    decoder, ``"greedy"``: the same model read greedily)."""

    def __init__(self, readers: dict[str, Reader], threads: int = 1, queue_length: int = 64) -> None:
        self.readers = readers
        self.jobs: queue.Queue[Job] = queue.Queue(maxsize=max(queue_length, 1))
        self.stopping = threading.Event()
        self._held: list[Job] = []  # taken from the queue, waiting for a round of their own options
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, name=f"htrlab-read-{k}", daemon=True)
            for k in range(max(threads, 1))
        ]
        for t in self._threads:
            t.start()

    def submit(self, sources: Sequence[Source], options: tuple[str, str, str]) -> Future[list[Page]]:
        """Queue a job; raises :class:`QueueFull` when the queue has no place."""
        job = Job(list(sources), options)
        try:
            self.jobs.put_nowait(job)
        except queue.Full as exc:
            raise QueueFull from exc
        return job.result

    def stop(self) -> None:
        self.stopping.set()
        for t in self._threads:
            t.join(timeout=5)

    def _take(self) -> list[Job]:
        """The oldest job waiting and every other waiting job with its options. Jobs of other options are held
        (in order, ahead of the queue) for the next round, never put back into the queue, whose places new
        requests may have taken meanwhile. Raises ``queue.Empty`` when nothing came within 0.2 s."""
        with self._lock:
            pool, self._held = self._held, []
        if not pool:
            pool = [self.jobs.get(timeout=0.2)]
        with self._lock:
            while True:
                try:
                    pool.append(self.jobs.get_nowait())
                except queue.Empty:
                    break
            pool = pool + self._held  # what another thread held meanwhile comes after
            group = [j for j in pool if j.options == pool[0].options]
            self._held = [j for j in pool if j.options != pool[0].options]
        return group

    def waiting(self) -> int:
        return self.jobs.qsize() + len(self._held)

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                group = self._take()
            except queue.Empty:
                continue
            live = [j for j in group if j.result.set_running_or_notify_cancel()]
            if live:
                self._read(live)

    def _read(self, group: list[Job]) -> None:
        decoder, layout, orientation = group[0].options
        sources = [s for job in group for s in job.sources]
        try:
            pages = list(
                self.readers[decoder].read_sources(
                    sources, layout=layout, orientation=orientation, on_error="skip"
                )
            )
        except Exception as exc:  # a failure of the reading itself reaches every request of the batch
            for job in group:
                job.result.set_exception(exc)
            return
        start = 0
        for job in group:
            job.result.set_result(pages[start : start + len(job.sources)])
            start += len(job.sources)


__all__ = ["BatchWorker", "Job", "QueueFull"]

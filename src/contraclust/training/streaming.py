"""Where the training samples live: resident on the device, or streamed from host memory.

``ResidentSource`` holds the whole set on the device (the fast path: a batch is one index). When the
set does not fit (``choose_placement``), ``StreamingSource`` leaves it in host memory (for a
``.ccpack``, a memory map of the file) and a background thread gathers each batch's rows into pinned
host memory and copies them to the device on a side CUDA stream, a few batches ahead of the step;
the views are still made on the device. A JPEG pack (``data/pack.py``) is decoded per batch on that
thread: on the GPU by nvJPEG (torchvision) when it can, else by Pillow. Both paths yield the same
batches in the same order, so a run is the same run on either path. Under torchrun each rank gathers
only its own rows of each batch.
"""
from __future__ import annotations

import os
import queue
import threading
from typing import Iterable, Iterator

import torch

RESIDENT_SHARE = 0.5  # of the free memory, the most the data may take (the rest: model, activations)


def free_memory_bytes(device: torch.device) -> int:
    """Free memory of ``device``: CUDA's free bytes, else the host's available memory."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))


def choose_placement(nbytes: int, device: torch.device, placement: str = "auto",
                     limit_mb: float = 0.0) -> tuple[str, str]:
    """("resident" or "streaming", the reason in words) for a set of ``nbytes`` on ``device``.
    ``placement`` forces one; ``limit_mb`` above 0 replaces the measured allowance."""
    size = _mb(nbytes)
    if placement != "auto":
        return placement, f"{size} asked to be {placement} (train.data_placement)"
    if limit_mb > 0:
        allowed, whence = int(limit_mb * 2 ** 20), "the limit set by train.data_memory_limit_mb"
    else:
        free = free_memory_bytes(device)
        allowed = int(RESIDENT_SHARE * free)
        whence = f"half of the {_mb(free)} free on {device}"
    if nbytes <= allowed:
        return "resident", f"{size} fits within {whence} ({_mb(allowed)})"
    return "streaming", f"{size} is more than {whence} ({_mb(allowed)})"


def _mb(nbytes: int) -> str:
    return f"{nbytes / 2 ** 30:.1f} GB" if nbytes >= 2 ** 30 else f"{nbytes / 2 ** 20:.1f} MB"


class ResidentSource:
    """The whole set on the device; a batch is one index."""

    placement = "resident"

    def __init__(self, samples: torch.Tensor, device: torch.device):
        self.samples = samples.to(device)
        self.device = device

    def gather(self, rows: torch.Tensor) -> torch.Tensor:
        return self.samples[rows.to(self.device)]

    def batches(self, row_batches: Iterable[torch.Tensor]) -> Iterator[torch.Tensor]:
        for rows in row_batches:
            yield self.gather(rows)


class StreamingSource:
    """The set in host memory; ``batches`` gathers ahead on a background thread (pinned memory and
    an asynchronous copy on CUDA), at most ``depth`` batches ahead."""

    placement = "streaming"

    def __init__(self, samples: torch.Tensor, device: torch.device, depth: int = 3):
        self.samples = samples
        self.device = device
        self.depth = depth
        self.on_cuda = device.type == "cuda"
        self.copy_stream = torch.cuda.Stream(device) if self.on_cuda else None

    def gather(self, rows: torch.Tensor) -> torch.Tensor:
        """One batch, synchronously (for evaluation and the neighbour partners)."""
        return self.samples[rows.cpu()].to(self.device)

    def batches(self, row_batches: Iterable[torch.Tensor]) -> Iterator[torch.Tensor]:
        ready: queue.Queue = queue.Queue(maxsize=self.depth)
        stop = threading.Event()
        worker = threading.Thread(target=self._fill, args=(list(row_batches), ready, stop), daemon=True,
                                  name="contraclust-stream")
        worker.start()
        try:
            while True:
                item = ready.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                batch, copied = item
                if copied is not None:
                    stream = torch.cuda.current_stream(self.device)
                    stream.wait_event(copied)
                    batch.record_stream(stream)  # its memory is not reused before this stream is done with it
                yield batch
        finally:
            stop.set()
            while worker.is_alive():
                try:
                    ready.get(timeout=0.05)
                except queue.Empty:
                    pass
            worker.join()

    def _fill(self, row_batches: list[torch.Tensor], ready: queue.Queue, stop: threading.Event) -> None:
        """The background thread: gather, pin, copy; ``None`` at the end, the exception on failure."""
        slots: list[tuple[torch.Tensor, torch.cuda.Event | None]] = []
        try:
            for i, rows in enumerate(row_batches):
                if stop.is_set():
                    return
                rows = rows.cpu()
                if not self.on_cuda:
                    self._put(ready, stop, (self.samples.index_select(0, rows), None))
                    continue
                if not isinstance(self.samples, torch.Tensor):  # a JPEG pack: decoded per batch
                    with torch.cuda.stream(self.copy_stream):
                        batch = self.samples.to_device(rows, self.device)
                        decoded = torch.cuda.Event()
                        decoded.record(self.copy_stream)
                    self._put(ready, stop, (batch, decoded))
                    continue
                slot = i % (self.depth + 2)
                if len(slots) <= slot:
                    buffer = torch.empty((len(rows), *self.samples.shape[1:]), dtype=self.samples.dtype,
                                         pin_memory=True)
                    slots.append((buffer, torch.cuda.Event()))
                buffer, done = slots[slot]
                done.synchronize()  # the copy that last read this pinned buffer has finished
                buffer = buffer[: len(rows)]
                torch.index_select(self.samples, 0, rows, out=buffer)
                with torch.cuda.stream(self.copy_stream):
                    batch = buffer.to(self.device, non_blocking=True)
                    done.record(self.copy_stream)
                self._put(ready, stop, (batch, done))
            self._put(ready, stop, None)
        except BaseException as exc:  # handed to the training thread, which raises it
            self._put(ready, stop, exc)

    @staticmethod
    def _put(ready: queue.Queue, stop: threading.Event, item) -> None:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.05)
                return
            except queue.Full:
                pass


def make_source(samples: torch.Tensor, device: torch.device, placement: str) -> ResidentSource | StreamingSource:
    return ResidentSource(samples, device) if placement == "resident" else StreamingSource(samples, device)

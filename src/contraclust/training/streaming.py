"""Where the training samples live: resident on the device, or streamed from host memory.

``ResidentSource`` holds the whole set on the device (the fast path: a batch is one index). When the
set does not fit (``choose_placement``), ``StreamingSource`` leaves it in host memory (for a
``.ccpack``, a memory map of the file) and a background thread gathers each batch's rows into pinned
host memory and copies them to the device on a side CUDA stream, a few batches ahead of the step;
the views are still made on the device. A JPEG pack (``data/pack.py``) is decoded per batch on that
thread: on the GPU by nvJPEG (torchvision) when it can, else by Pillow. Both paths yield the same
batches in the same order, so a run is the same run on either path. Under torchrun each rank gathers
only its own rows of each batch.

Both sources take, per step, an (m, b) tensor of rows: m row sets of b rows (a batch, and the
nearest-neighbour partners of its rows for vectors), and yield m device tensors per step.
"""
from __future__ import annotations

import collections
import os
import queue
import threading
from typing import Callable, Iterable, Iterator

import torch

from contraclust.data.readers import available_host_memory

RESIDENT_SHARE = 0.5  # of the free memory, the most the data may take (the rest: model, activations)


def free_memory_bytes(device: torch.device) -> int:
    """Free memory of ``device``: on CUDA the driver's free bytes plus what PyTorch's allocator holds
    reserved but unused (``mem_get_info`` counts that as used, so a second stage in the same process
    would see less), else the host's available memory."""
    if device.type == "cuda":
        free = int(torch.cuda.mem_get_info(device)[0])
        return free + int(torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    available = available_host_memory()
    return available if available is not None else int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))


def choose_placement(nbytes: int, device: torch.device, placement: str = "auto",
                     limit_mb: float = 0.0, working_bytes: int = 0) -> tuple[str, str]:
    """("resident" or "streaming", the reason in words) for a set of ``nbytes`` on ``device``.
    ``placement`` forces one; ``limit_mb`` above 0 replaces the measured allowance. ``working_bytes``:
    what the training itself needs there (the model, its optimiser and a step's activations), kept free
    on top of the data."""
    size = _mb(nbytes)
    if placement != "auto":
        return placement, f"{size} asked to be {placement} (train.data_placement)"
    if limit_mb > 0:
        allowed, whence = int(limit_mb * 2 ** 20), "the limit set by train.data_memory_limit_mb"
    else:
        free = free_memory_bytes(device)
        allowed = int(min(RESIDENT_SHARE * free, free - working_bytes))
        whence = (f"half of the {_mb(free)} free on {device}" if allowed == int(RESIDENT_SHARE * free) else
                  f"the {_mb(free)} free on {device} less the {_mb(working_bytes)} training needs")
    if nbytes <= allowed:
        return "resident", f"{size} fits within {whence} ({_mb(max(allowed, 0))})"
    return "streaming", f"{size} is more than {whence} ({_mb(max(allowed, 0))})"


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

    def batches(self, row_sets: Iterable[torch.Tensor]) -> Iterator[tuple[torch.Tensor, ...]]:
        for rows in row_sets:
            yield tuple(self.gather(r) for r in rows.reshape(-1, rows.shape[-1]))


class StreamingSource:
    """The set in host memory; ``batches`` gathers ahead on a background thread (pinned memory and
    an asynchronous copy on CUDA), at most ``depth`` steps ahead."""

    placement = "streaming"

    def __init__(self, samples: torch.Tensor, device: torch.device, depth: int = 3):
        self.samples = samples
        self.device = device
        self.depth = depth
        self.on_cuda = device.type == "cuda"
        self.copy_stream = torch.cuda.Stream(device) if self.on_cuda else None

    def gather(self, rows: torch.Tensor) -> torch.Tensor:
        """One batch, synchronously (outside the training step: the time budget's probe)."""
        return self.samples[rows.cpu()].to(self.device)

    def batches(self, row_sets: Iterable[torch.Tensor]) -> Iterator[tuple[torch.Tensor, ...]]:
        ready: queue.Queue = queue.Queue(maxsize=self.depth)
        stop = threading.Event()
        worker = threading.Thread(target=self._fill, args=(list(row_sets), ready, stop), daemon=True,
                                  name="contraclust-stream")
        worker.start()
        try:
            while True:
                item = ready.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                tensors, copied = item
                if copied is not None:
                    stream = torch.cuda.current_stream(self.device)
                    stream.wait_event(copied)
                    for tensor in tensors:
                        tensor.record_stream(stream)  # its memory is not reused before this stream is done with it
                yield tensors
        finally:
            stop.set()
            while worker.is_alive():
                try:
                    ready.get(timeout=0.05)
                except queue.Empty:
                    pass
            worker.join()

    def _fill(self, row_sets: list[torch.Tensor], ready: queue.Queue, stop: threading.Event) -> None:
        """The background thread: gather, pin, copy; ``None`` at the end, the exception on failure."""
        slots: dict[tuple[int, int], tuple[torch.Tensor, torch.cuda.Event]] = {}
        # Decoded JPEG batches that the copy stream may still read: kept until their event has completed.
        in_flight: collections.deque = collections.deque()
        try:
            for i, rows in enumerate(row_sets):
                if stop.is_set():
                    return
                rows = rows.cpu().reshape(-1, rows.shape[-1])
                if not self.on_cuda:
                    self._put(ready, stop, (tuple(self.samples.index_select(0, r) for r in rows), None))
                    continue
                if not isinstance(self.samples, torch.Tensor):  # a JPEG pack: decoded per batch
                    while len(in_flight) > self.depth + 1:
                        event, _ = in_flight.popleft()
                        event.synchronize()
                    keep: list[torch.Tensor] = []
                    with torch.cuda.stream(self.copy_stream):
                        tensors = tuple(self.samples.to_device(r, self.device, keep) for r in rows)
                        decoded = torch.cuda.Event()
                        decoded.record(self.copy_stream)
                    in_flight.append((decoded, keep))
                    self._put(ready, stop, (tensors, decoded))
                    continue
                done = None
                tensors = []
                for j, r in enumerate(rows):
                    key = (i % (self.depth + 2), j)
                    if key not in slots or slots[key][0].shape[0] < len(r):
                        slots[key] = (torch.empty((len(r), *self.samples.shape[1:]), dtype=self.samples.dtype,
                                                  pin_memory=True), torch.cuda.Event())
                    buffer, done = slots[key]
                    done.synchronize()  # the copy that last read this pinned buffer has finished
                    buffer = buffer[: len(r)]
                    torch.index_select(self.samples, 0, r, out=buffer)
                    with torch.cuda.stream(self.copy_stream):
                        tensors.append(buffer.to(self.device, non_blocking=True))
                        done.record(self.copy_stream)
                self._put(ready, stop, (tuple(tensors), done))
            self._put(ready, stop, None)
        except BaseException as exc:  # handed to the training thread, which raises it
            self._put(ready, stop, exc)
        finally:
            for event, _ in in_flight:
                event.synchronize()

    @staticmethod
    def _put(ready: queue.Queue, stop: threading.Event, item) -> None:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.05)
                return
            except queue.Full:
                pass


Source = ResidentSource | StreamingSource


def make_source(samples: torch.Tensor, device: torch.device, placement: str) -> Source:
    return ResidentSource(samples, device) if placement == "resident" else StreamingSource(samples, device)


def place_data(samples: torch.Tensor, extra: torch.Tensor | None, device: torch.device, train,
               step_bytes: Callable[[], int]) -> tuple[Source, Source | None, str]:
    """The sources of the samples (and of the extra instance-only samples), resident or streamed by
    ``train.data_placement`` / ``train.data_memory_limit_mb`` or, with neither, by what fits beside what
    a training step needs (``step_bytes``, measured only then); and the choice in words."""
    nbytes = samples.nbytes + (extra.nbytes if extra is not None else 0)
    measured = train.data_placement == "auto" and not train.data_memory_limit_mb
    placement, reason = choose_placement(nbytes, device, train.data_placement, train.data_memory_limit_mb,
                                         step_bytes() if measured else 0)
    how = ("one index per batch" if placement == "resident" else
           "batches gathered by a background thread" + (", pinned and copied asynchronously"
                                                         if device.type == "cuda" else ""))
    return (make_source(samples, device, placement),
            make_source(extra, device, placement) if extra is not None else None,
            f"data: {placement} ({how}): {reason}")


def row_sets(source: Source, *per_step: list[torch.Tensor]) -> list[torch.Tensor]:
    """Per step an (m, b) tensor of the rows to gather (a batch, and its partners when given) as
    ``source`` takes them: moved to the host at once for a streamed set (one copy per epoch; its
    background thread gathers from host memory), left on the device for a resident one."""
    sets = [torch.stack(rows) for rows in zip(*per_step)]
    if source.placement != "streaming" or not sets:
        return sets
    if len({s.shape for s in sets}) == 1:
        return list(torch.stack(sets).cpu().unbind())
    return [s.cpu() for s in sets]  # a short last batch (drop_last off)

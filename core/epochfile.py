"""A checkpoint that the training loop rewrites after every epoch: the same tensors (names, dtypes,
shapes) each time with new values, and a new record.

    best = EpochFile(folder / "best.safetensors", fixed={"config": ..., "dataset": ...})
    best.write(model.state_dict(), meta)           # after each epoch that improved; meta: the rest

    writer = Writer()                              # the training loop's way: finished in a thread
    last = EpochFile(folder / "last.safetensors", fixed, writer)
    last.write(tensors, meta)                      # the tensors are copied before this returns
    writer.send()                                  # the records, hashes and files: in the thread
    writer.close()                                 # at the run's end: wait; a failed write raises here

The file is the one `core.checkpoint.save_checkpoint` writes (safetensors, the JSON record in its
metadata, format 2's SHA-256 of the whole file), and `read_checkpoint` loads either alike. What
differs is the cost per epoch. The header's tensor entries and the data's layout are worked out on
the first write and kept; each later write copies the tensors into one buffer in a single call
(`torch._foreach_copy_`), hashes the header and the buffer, and hands both to
`core.savefile.write_in_turn` without joining them. In the digits MLP's training loop the `last`
checkpoint (26 tensors, 42 KiB) went from 1.13-1.23 ms to 0.67-0.69 ms per epoch, collecting the
state included (`bench/bench_tracking.py`, see bench/README.md).

With a `Writer`, only the copy happens in the caller's thread: the buffer is then a snapshot (the
next optimizer step may change the tensors at once), and the record's lists are copied too. The
rest (the record rendered, the hash, the file written and exchanged) runs in the writer's thread,
in the order the writes were handed over, while the caller goes on. The buffer is reused: a write
first waits for the batch sent before it. An error in the thread is raised by the next `wait`,
`send`, write or `close`. This is how PyTorch's own asynchronous checkpointing works (stage to CPU
memory, write in the background); in the digits loop it took the two checkpoints from 1.21-1.34 ms
of the training thread's time per epoch to 0.52-0.63 ms.

A write whose tensors differ in names, dtypes or shapes from the previous one lays the file out again.
Any strides and devices are accepted: the copy makes the bytes contiguous and brings them to the CPU.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path

import torch

from core.checkpoint import DIGEST_MARKER, META_KEY, record_json, sealed
from core.savefile import write_in_turn

DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
          torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
          torch.bool: "BOOL"}


class _Layout:
    """Where each tensor goes: entries in the header, typed views of one byte buffer."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        self.keys = tuple(tensors)
        self.shapes = [(t.dtype, t.shape) for t in tensors.values()]
        # Largest elements first, so that every view starts at a multiple of its element size.
        order = sorted(self.keys, key=lambda name: (-tensors[name].element_size(), name))
        sizes = {name: tensors[name].numel() * tensors[name].element_size() for name in order}
        self.buffer = torch.empty(sum(sizes.values()), dtype=torch.uint8)
        entries, views, start = {}, {}, 0
        for name in order:
            t, end = tensors[name], start + sizes[name]
            entries[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [start, end]}
            views[name] = self.buffer[start:end].view(t.dtype).view(t.shape)
            start = end
        self.views = [views[name] for name in self.keys]        # in the order the tensors arrive
        self.entries = json.dumps(entries)[1:-1]
        self.data = memoryview(self.buffer.numpy())

    def fits(self, tensors: dict[str, torch.Tensor]) -> bool:
        return tuple(tensors) == self.keys and [(t.dtype, t.shape) for t in tensors.values()] == self.shapes


class Writer:
    """A thread of its own that finishes checkpoint writes while the caller goes on: the jobs handed
    over are sent as one batch and run in that order; the next batch waits for the previous one.

        writer.hand(job); writer.hand(other)    # staged
        writer.send()                           # run in the thread, in that order
        writer.wait()                           # the batch sent is done; its error, if any, raised here
        writer.close()                          # wait, then stop the thread
    """

    def __init__(self) -> None:
        self._jobs: list = []
        self._pending: Future | None = None
        self._thread: ThreadPoolExecutor | None = None

    def hand(self, job) -> None:
        self._jobs.append(job)

    def send(self) -> None:
        if not self._jobs:
            return
        self.wait()
        jobs, self._jobs = self._jobs, []
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="checkpoint-writer")
        self._pending = self._thread.submit(_run_in_turn, jobs)

    def wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Send what is staged, wait for it, stop the thread; the batch's error, if any, is raised."""
        try:
            self.send()
            self.wait()
        finally:
            self._jobs = []
            if self._thread is not None:
                self._thread.shutdown()
                self._thread = None


def _run_in_turn(jobs: list) -> None:
    for job in jobs:
        job()


class EpochFile:
    """One checkpoint file, rewritten in turn (see the module's docstring)."""

    def __init__(self, path: Path, fixed: dict | None = None, writer: Writer | None = None) -> None:
        self.path = Path(path)
        self.fixed = json.dumps(fixed or {})           # rendered once: the record's entries common to every write
        self.writer = writer
        self._layout: _Layout | None = None

    def write(self, tensors: dict[str, torch.Tensor], meta: dict) -> Path:
        """Replace the file with `tensors` and a record of `fixed` and `meta` (none of `fixed`'s keys),
        as `save_checkpoint` records them; returns the file's path. With a `writer`, the tensors are
        copied before this returns, and the rest is handed to the writer (sent with its next batch)."""
        if self.writer is not None:
            self.writer.wait()                         # the previous batch is done: this file's buffer is free
        layout = self._layout
        if layout is None or not layout.fits(tensors):
            if not all(t.dtype in DTYPES and t.layout == torch.strided for t in tensors.values()):
                if self.writer is not None:            # what was staged before this goes to disk before it
                    self.writer.send()
                    self.writer.wait()
                write_in_turn(self.path, sealed(tensors, record_json(meta, self.fixed)))
                self._layout = None
                return self.path
            layout = self._layout = _Layout(tensors)
        with torch.no_grad():
            sources = list(tensors.values())
            if all(t.is_cpu for t in sources):
                torch._foreach_copy_(layout.views, sources)
            else:
                for view, source in zip(layout.views, sources):
                    view.copy_(source)
        if self.writer is None:
            _finish(self.path, layout, meta, self.fixed)
        else:       # the record is rendered in the writer: the lists in it are copied now (the loop appends)
            meta = {key: list(value) if isinstance(value, list) else value for key, value in meta.items()}
            self.writer.hand(partial(_finish, self.path, layout, meta, self.fixed))   # no reference to self
        return self.path


def _finish(path: Path, layout: _Layout, meta: dict, fixed: str) -> None:
    """Seal the data in `layout.buffer` with the record of `meta` and `fixed`, and write the file."""
    head = _head(layout, meta, fixed)
    at = head.index(DIGEST_MARKER) + len(DIGEST_MARKER)        # the record's first field
    digest = hashlib.sha256(head)
    digest.update(layout.data)                                 # the GIL is released while a large buffer hashes
    head[at:at + 64] = digest.hexdigest().encode()
    write_in_turn(path, head, layout.data)


def _head(layout: _Layout, meta: dict, fixed: str) -> bytearray:
    """The file's first bytes: the header's length, then the header with the record, its digest unset
    (the Python part of a write: in the writer's thread it holds the GIL)."""
    header = f'{{"__metadata__": {{"{META_KEY}": {json.dumps(record_json(meta, fixed))}}}, {layout.entries}}}'.encode()
    header += b" " * (-len(header) % 8)                      # the data starts 8-byte aligned
    return bytearray(len(header).to_bytes(8, "little") + header)

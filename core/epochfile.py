"""A checkpoint that the training loop rewrites after every epoch: the same tensors (names, dtypes,
shapes) each time with new values, and a new record.

    best = EpochFile(folder / "best.safetensors", fixed={"config": ..., "dataset": ...})
    best.write(model.state_dict(), meta)           # after each epoch that improved; meta: the rest

    writer = Writer(process=True)                  # a tracked run's way (`core.writer`); core.train's: a thread
    last = EpochFile(folder / "last.safetensors", fixed, writer)
    last.write(tensors, meta)                      # the tensors are copied before this returns
    writer.send()                                  # the records, hashes and files: in the writer
    writer.close()                                 # at the run's end: wait; a failed write raises here

The file is the one `core.checkpoint.save_checkpoint` writes (safetensors, the JSON record in its
metadata, format 2's SHA-256 of the whole file), and `read_checkpoint` loads either alike. What
differs is the cost per epoch. The header's tensor entries and the data's layout are worked out on
the first write and kept; each later write copies the tensors into one buffer in a single call
(`torch._foreach_copy_`), hashes the header and the buffer, and hands both to
`core.savefile.write_in_turn` without joining them.

With a `Writer`, only the copy happens in the caller's thread: the buffer is then a snapshot (the
next optimizer step may change the tensors at once). The rest (the record rendered, the hash, the
file written and exchanged) runs in the writer, a thread or a process of its own, in the order the
writes were handed over, while the caller goes on. The buffer is a shared anonymous mapping, so a
writer process forked after it was laid out reads what the caller copies in; a file laid out again
registers itself again, and the writer forks anew. The buffer is reused: a write first waits for the
batch sent before it. An error in the writer is raised by the next `wait`, `send`, write or `close`.
This is how PyTorch's own asynchronous checkpointing works (stage to CPU memory, write in the
background, in a thread or a process). Whoever writes, the spare file is the caller's process's.

`write_from_source` serves the training loop's `best` checkpoint: its tensors are the model part of
the `last` checkpoint staged for the same epoch, so instead of a second copy in the caller's thread,
the writer copies those bytes from `last`'s buffer (byte ranges worked out once per pair of layouts).

A write whose tensors differ in names, dtypes or shapes from the previous one lays the file out again.
Any strides and devices are accepted: the copy makes the bytes contiguous and brings them to the CPU.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
from pathlib import Path

import torch

from core.checkpoint import DIGEST_MARKER, META_KEY, record_json, sealed
from core.savefile import write_in_turn
from core.writer import Writer

DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
          torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
          torch.bool: "BOOL"}


class _Layout:
    """Where each tensor goes: entries in the header, typed views of one byte buffer."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        self.keys = tuple(tensors)
        self.shapes = [(t.dtype, t.shape) for t in tensors.values()]
        # One copy call for all when they are on the CPU (a tensor that moved since fails that call).
        self.on_cpu = all(t.is_cpu for t in tensors.values())
        # Largest elements first, so that every view starts at a multiple of its element size.
        order = sorted(self.keys, key=lambda name: (-tensors[name].element_size(), name))
        sizes = {name: tensors[name].numel() * tensors[name].element_size() for name in order}
        self.buffer = shared_buffer(sum(sizes.values()))
        entries, views, start = {}, {}, 0
        for name in order:
            t, end = tensors[name], start + sizes[name]
            entries[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [start, end]}
            views[name] = self.buffer[start:end].view(t.dtype).view(t.shape)
            start = end
        self.places = {name: (entry["dtype"], entry["shape"], *entry["data_offsets"]) for name, entry in entries.items()}
        self.views = [views[name] for name in self.keys]        # in the order the tensors arrive
        self.entries = json.dumps(entries)[1:-1]
        self.data = memoryview(self.buffer.numpy())

    def fits(self, tensors: dict[str, torch.Tensor]) -> bool:
        return tuple(tensors) == self.keys and [(t.dtype, t.shape) for t in tensors.values()] == self.shapes


def shared_buffer(size: int) -> torch.Tensor:
    """`size` bytes in a shared anonymous mapping: a writer process forked later sees what is copied in."""
    if size == 0:
        return torch.empty(0, dtype=torch.uint8)
    return torch.frombuffer(mmap.mmap(-1, size), dtype=torch.uint8)     # the tensor keeps the mapping alive


class EpochFile:
    """One checkpoint file, rewritten in turn (see the module's docstring)."""

    def __init__(self, path: Path, fixed: dict | None = None, writer: Writer | None = None,
                 source: tuple["EpochFile", str] | None = None) -> None:
        self.path = Path(path)
        self.fixed = json.dumps(fixed or {})           # rendered once: the record's entries common to every write
        self.writer = writer
        self.owner = os.getpid()                       # whose spare file the writes go through, whichever writes
        self.source = source                           # (file, prefix): where `write_from_source` takes its bytes
        self._layout: _Layout | None = None
        self._ranges: tuple | None = None              # (own layout, source layout, byte ranges) last worked out

    def write(self, tensors: dict[str, torch.Tensor], meta: dict) -> Path:
        """Replace the file with `tensors` and a record of `fixed` and `meta` (none of `fixed`'s keys),
        as `save_checkpoint` records them; returns the file's path. With a `writer`, the tensors are
        copied before this returns, and the rest is handed to the writer (sent with its next batch)."""
        job = self.stage(tensors, meta)
        if job is None:                                # tensors the buffer cannot hold: written here, now
            if self.writer is not None:                # what was staged before this goes to disk before it
                self.writer.flush()
            write_in_turn(self.path, sealed(tensors, record_json(meta, self.fixed)), owner=self.owner)
        elif self.writer is None:
            self.finish(*job[1:])
        else:
            self.writer.hand(*job)
        return self.path

    def stage(self, tensors: dict[str, torch.Tensor], meta: dict) -> tuple | None:
        """Copy `tensors` into the buffer and return the job that finishes the file, (its name in the
        writer, its arguments...), for the caller to hand to the writer; None, with nothing done,
        where they cannot be laid out (sparse tensors, an unknown dtype)."""
        layout = self._ready_layout(tensors)
        if layout is None:
            return None
        with torch.no_grad():
            sources = list(tensors.values())
            if layout.on_cpu:
                torch._foreach_copy_(layout.views, sources)
            else:
                for view, source in zip(layout.views, sources):
                    view.copy_(source)
        return self.path.name, self._snapshot(meta)

    def write_from_source(self, tensors: dict[str, torch.Tensor], meta: dict) -> Path:
        """Like `write`, for `tensors` that the source file's buffer holds as they are now, under the
        source's prefix (staged, not yet finished: in the training loop, the `best` checkpoint's model
        is in the `last` one's buffer). The bytes are copied from there in the writer, and `tensors`
        only lay this file out. Where the source cannot serve, it is `write`."""
        ranges = self._source_ranges(tensors)
        if ranges is None:
            return self.write(tensors, meta)
        self.writer.hand(self.path.name, self._snapshot(meta), ranges)
        return self.path

    def finish(self, meta: dict, ranges: tuple = ()) -> None:
        """Seal the data in the buffer (first copying `ranges`, (start, end, source start) in bytes, from
        the source's buffer) with the record of `meta`, and write the file."""
        layout = self._layout
        if ranges:
            source = self.source[0]._layout.data
            for start, end, at in ranges:
                layout.data[start:end] = source[at:at + end - start]
        head = _head(layout, meta, self.fixed)
        at = head.index(DIGEST_MARKER) + len(DIGEST_MARKER)    # the record's first field
        digest = hashlib.sha256(head)
        digest.update(layout.data)                             # the GIL is released while a large buffer hashes
        head[at:at + 64] = digest.hexdigest().encode()
        write_in_turn(self.path, head, layout.data, owner=self.owner)

    def _snapshot(self, meta: dict) -> dict:
        """The record as it is now, for a thread that renders it later while the loop appends to its
        lists; a writer process gets a copy anyway (the batch is pickled when it is sent)."""
        if self.writer is not None and self.writer.process:
            return meta
        return {key: list(value) if isinstance(value, list) else value for key, value in meta.items()}

    def _ready_layout(self, tensors: dict[str, torch.Tensor]) -> _Layout | None:
        """The layout for `tensors`, made when they differ from the last ones; None where they cannot be
        laid out. First waits for the writer's previous batch, which may still read the buffer."""
        if self.writer is not None:
            self.writer.wait()
        if self._layout is not None and self._layout.fits(tensors):
            return self._layout
        self._layout = None
        if not all(t.dtype in DTYPES and t.layout == torch.strided for t in tensors.values()):
            return None
        self._layout = _Layout(tensors)
        if self.writer is not None:                    # a writer process must know the new buffer: it forks again
            self.writer.register(self.path.name, self.finish)
        return self._layout

    def _source_ranges(self, tensors: dict[str, torch.Tensor]) -> tuple | None:
        """The byte ranges to copy from the source's buffer, or None where the source cannot serve."""
        source_file, prefix = self.source or (None, "")
        if self.writer is None or source_file is None or source_file.writer is not self.writer:
            return None
        source = source_file._layout
        if source is None or self._ready_layout(tensors) is None:
            return None
        if self._ranges is None or self._ranges[:2] != (self._layout, source):
            self._ranges = (self._layout, source, byte_ranges(self._layout, source, prefix))
        return self._ranges[2]


def byte_ranges(layout: _Layout, source: _Layout, prefix: str) -> tuple | None:
    """Where each of `layout`'s tensors lies in `source` (named `prefix` + its name, the same dtype and
    shape), as (start, end, source start) byte ranges, adjacent ones merged; None where one is missing."""
    ranges: list[list[int]] = []
    for name, (dtype, shape, start, end) in sorted(layout.places.items(), key=lambda item: item[1][2]):
        found = source.places.get(prefix + name)
        if found is None or found[:2] != (dtype, shape):
            return None
        if ranges and ranges[-1][1] == start and ranges[-1][2] + (start - ranges[-1][0]) == found[2]:
            ranges[-1][1] = end
        else:
            ranges.append([start, end, found[2]])
    return tuple(tuple(r) for r in ranges)


def _head(layout: _Layout, meta: dict, fixed: str) -> bytearray:
    """The file's first bytes: the header's length, then the header with the record, its digest unset
    (the Python part of a write: in the writer's thread it holds the GIL)."""
    header = f'{{"__metadata__": {{"{META_KEY}": {json.dumps(record_json(meta, fixed))}}}, {layout.entries}}}'.encode()
    header += b" " * (-len(header) % 8)                      # the data starts 8-byte aligned
    return bytearray(len(header).to_bytes(8, "little") + header)

"""Streaming reads of boxes (slices) of tensors stored in safetensors files.

A box's C-order bytes come in bounded chunks: unchanged contiguous runs as SourceRange for the
writer to copy inside the kernel, everything else (column cuts, dtype changes) as bytes in
reused buffers. Descriptors are shared by threads; each thread has its own BoxReader.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from engineforge.checkpoint.safetensors_format import DTYPES, StoredTensor
from engineforge.errors import UserError

Box = tuple[tuple[int, int], ...]  # (start, stop) per dimension


class FileHandles:
    """Read-only descriptors opened on first use and shared by threads (pread needs no seek)."""

    def __init__(self):
        self._fds: dict[Path, int] = {}
        self._lock = threading.Lock()

    def fd(self, path: Path) -> int:
        with self._lock:
            if path not in self._fds:
                self._fds[path] = os.open(path, os.O_RDONLY)
            return self._fds[path]

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()


@dataclass(frozen=True)
class SourceRange:
    """Bytes `offset .. offset + nbytes` of an open source file, to be copied unchanged."""

    fd: int
    offset: int
    nbytes: int
    path: Path


@dataclass(frozen=True)
class StridedRange:
    """`rows` runs of `nbytes_per_row` bytes, the first at `offset`, each `stride` after the
    previous, of an open source file: a column cut of whole rows, to be copied unchanged."""

    fd: int
    offset: int
    rows: int
    stride: int
    nbytes_per_row: int
    path: Path

    @property
    def nbytes(self) -> int:
        return self.rows * self.nbytes_per_row


class BoxReader:
    """Streams the C-order bytes of a box of a stored tensor in bounded chunks (one per thread).

    Its buffers are allocated once and reused: fresh multi-megabyte allocations cost a page
    fault per 4 KiB, which measured slower than the copies themselves.
    """

    def __init__(self, handles: FileHandles, chunk_bytes: int = 4 << 20):
        self.handles = handles
        self.chunk_bytes = max(8, chunk_bytes - chunk_bytes % 8)  # whole elements of any dtype
        self._read_buffer = bytearray()
        self._cut_buffer = None
        self._convert_buffer = None

    def chunks(
        self, stored: StoredTensor, box: Box, out_dtype: str | None = None, ranges: bool = False
    ) -> Iterator[memoryview | SourceRange | StridedRange]:
        """Yield the box's bytes, converted to safetensors dtype `out_dtype` when it differs.

        With `ranges`, runs that need no change (whole rows, same dtype) come as SourceRange
        for the caller to copy itself, and unchanged column cuts as StridedRange (only the
        kept columns are then ever copied). Each yielded view is only valid until the next one.
        """
        fd = self.handles.fd(stored.file)
        (_, rows_total, cols), (p_box, r_box, c_box) = _as_3d(stored.shape, box)
        row_bytes = cols * stored.itemsize
        unchanged = out_dtype in (None, stored.dtype)
        for p in range(*p_box):
            first = stored.start + (p * rows_total + r_box[0]) * row_bytes
            if c_box == (0, cols):  # whole rows: one contiguous run
                total = (r_box[1] - r_box[0]) * row_bytes
                for offset in range(0, total, self.chunk_bytes):
                    run = SourceRange(fd, first + offset, min(self.chunk_bytes, total - offset), stored.file)
                    yield run if ranges and unchanged else self._convert(self.read_range(run), stored.dtype, out_dtype)
                continue
            rows_per_block = max(1, self.chunk_bytes // row_bytes)
            for r in range(0, r_box[1] - r_box[0], rows_per_block):
                rows = min(rows_per_block, r_box[1] - r_box[0] - r)
                if ranges and unchanged:
                    yield StridedRange(fd, first + r * row_bytes + c_box[0] * stored.itemsize, rows, row_bytes,
                                       (c_box[1] - c_box[0]) * stored.itemsize, stored.file)
                    continue
                # Whole rows are read and the columns cut in memory: one pread instead of one per row.
                view = self.read_range(SourceRange(fd, first + r * row_bytes, rows * row_bytes, stored.file))
                yield self._convert(self._cut(view, rows, cols, c_box, stored.itemsize), stored.dtype, out_dtype)

    def read_range(self, run: SourceRange) -> memoryview:
        """The bytes of `run`, read with pread into the reused buffer (pread, not a lasting mmap:
        pages read this way never count toward the sharder's RSS)."""
        if len(self._read_buffer) < run.nbytes:
            self._read_buffer = bytearray(run.nbytes)
        view = memoryview(self._read_buffer)[: run.nbytes]
        done = 0
        while done < run.nbytes:
            count = os.preadv(run.fd, [view[done:]], run.offset + done)
            if count == 0:
                raise UserError(f"{run.path}: ended at byte {run.offset + done} while reading; the file changed during sharding")
            done += count
        return view

    def _cut(self, view: memoryview, rows: int, cols: int, c_box: tuple[int, int], itemsize: int) -> memoryview:
        import numpy as np

        words = np.frombuffer(view, dtype=f"u{itemsize}").reshape(rows, cols)[:, c_box[0] : c_box[1]]
        if self._cut_buffer is None or self._cut_buffer.nbytes < words.nbytes:
            self._cut_buffer = np.empty(max(words.nbytes, self.chunk_bytes), dtype=np.uint8)
        out = self._cut_buffer[: words.nbytes].view(words.dtype).reshape(words.shape)
        np.copyto(out, words)
        return memoryview(out).cast("B")

    def _convert(self, view: memoryview, src: str, dst: str | None) -> memoryview:
        if dst is None or dst == src or len(view) == 0:
            return view
        import torch

        source = torch.frombuffer(view, dtype=getattr(torch, DTYPES[src][0]))
        nbytes = source.numel() * DTYPES[dst][1]
        if self._convert_buffer is None or self._convert_buffer.numel() < nbytes:
            self._convert_buffer = torch.empty(max(nbytes, 2 * self.chunk_bytes), dtype=torch.uint8)
        out = self._convert_buffer[:nbytes].view(getattr(torch, DTYPES[dst][0]))
        out.copy_(source)
        return memoryview(out.view(torch.uint8).numpy()).cast("B")


def _as_3d(shape: tuple[int, ...], box: Box) -> tuple[tuple[int, ...], Box]:
    """View a tensor of rank 1-3 as (planes, rows, cols) so one loop reads every box we use."""
    if len(shape) == 1:
        return (1, 1, shape[0]), ((0, 1), (0, 1), box[0])
    if len(shape) == 2:
        return (1, *shape), ((0, 1), *box)
    if len(shape) == 3:
        return shape, box
    raise ValueError(f"tensors of rank {len(shape)} are not part of a Llama/Mixtral checkpoint")

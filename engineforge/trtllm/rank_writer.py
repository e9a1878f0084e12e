"""Stream one rank file: header first, then every tensor piece by piece, hashing as it goes.

Memory is bounded by the reader's chunk size, not by tensor or file size. Each rank is
independent, so ranks can be written by parallel threads here or by separate processes later.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
from pathlib import Path
from typing import Callable

from pydantic import BaseModel

from engineforge.trtllm.hf_reader import BoxReader, HFCheckpoint
from engineforge.trtllm.names import OutputTensor
from engineforge.trtllm.safetensors_format import DTYPES, encode_header


def _libc_function(name: str, *argtypes):
    # CDLL(None): the symbols the interpreter is linked with, libc's included (no ldconfig lookup).
    function = getattr(ctypes.CDLL(None, use_errno=True), name, None)
    if function is not None:
        function.argtypes = list(argtypes)
    return function


_fallocate = _libc_function("fallocate", ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)


class ShardFile(BaseModel):
    name: str
    size_bytes: int
    sha256: str


def rank_file_size(plan: list[OutputTensor]) -> int:
    return len(_header(plan)) + sum(t.nbytes for t in plan)


def write_rank_file(
    plan: list[OutputTensor],
    checkpoint: HFCheckpoint,
    path: Path,
    chunk_bytes: int,
    on_bytes: Callable[[int], None] = lambda n: None,
) -> ShardFile:
    """Write `path` from `plan`, fsync it, and return its size and sha256."""
    reader = BoxReader(checkpoint.handles, chunk_bytes)
    header = _header(plan)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        _reserve(fd, len(header) + sum(t.nbytes for t in plan))
        out = _Output(fd)
        out.write(memoryview(header))
        for tensor in plan:
            before = out.size
            for piece in tensor.pieces:
                if piece.source is None:
                    out.zeros(piece.numel * DTYPES[tensor.dtype][1], chunk_bytes)
                    continue
                logical = checkpoint.tensors[piece.source]
                for data in reader.chunks(logical.stored, logical.source_box(piece.box), tensor.dtype):
                    out.write(data)
            assert out.size - before == tensor.nbytes, (tensor.name, out.size - before, tensor.nbytes)
            on_bytes(tensor.nbytes)
        # Durable before the directory is renamed into place, so a crash cannot leave a
        # finished-looking checkpoint with missing data.
        os.fsync(fd)
    finally:
        os.close(fd)
    return ShardFile(name=path.name, size_bytes=out.size, sha256=out.digest.hexdigest())


class _Output:
    """Sequential writes with the sha256 computed inline, while the bytes are still in cache."""

    def __init__(self, fd: int):
        self.fd = fd
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: memoryview) -> None:
        self.digest.update(data)
        done = 0
        while done < len(data):
            done += os.write(self.fd, data[done:])
        self.size += len(data)

    def zeros(self, nbytes: int, chunk_bytes: int) -> None:
        block = memoryview(bytes(min(nbytes, chunk_bytes)))
        left = nbytes
        while left:
            step = min(left, len(block))
            self.write(block[:step])
            left -= step


def _reserve(fd: int, nbytes: int) -> None:
    """Allocate the file's blocks up front: a full disk fails here rather than midway, and ext4
    spends less CPU per write (measured 15-30%) than with delayed allocation.

    fallocate(2) through ctypes, not os.posix_fallocate: glibc's posix_fallocate falls back to
    writing every block where the filesystem lacks fallocate; here that case is simply skipped.
    """
    if _fallocate is None or _fallocate(fd, 0, 0, nbytes) == 0:
        return
    code = ctypes.get_errno()
    if code not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
        raise OSError(code, os.strerror(code))


def _header(plan: list[OutputTensor]) -> bytes:
    return encode_header([(t.name, t.dtype, t.shape) for t in plan])

"""Stream one rank file: header first, then every tensor piece by piece, hashing as it goes.

Memory is bounded by the reader's chunk size, not by tensor or file size. Each rank is
independent, so ranks can be written by parallel threads here or by separate processes later.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

from pydantic import BaseModel

from engineforge.trtllm.hf_reader import BoxReader, HFCheckpoint
from engineforge.trtllm.names import OutputTensor
from engineforge.trtllm.safetensors_format import DTYPES, encode_header


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
    digest = hashlib.sha256()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        size = _emit(fd, digest, memoryview(_header(plan)))
        for tensor in plan:
            written = 0
            for piece in tensor.pieces:
                if piece.source is None:
                    written += _zeros(fd, digest, piece.numel * DTYPES[tensor.dtype][1], chunk_bytes)
                    continue
                logical = checkpoint.tensors[piece.source]
                for data in reader.chunks(logical.stored, logical.source_box(piece.box), tensor.dtype):
                    written += _emit(fd, digest, data)
            assert written == tensor.nbytes, (tensor.name, written, tensor.nbytes)
            size += written
            on_bytes(written)
        # Durable before the directory is renamed into place, so a crash cannot leave a
        # finished-looking checkpoint with missing data.
        os.fsync(fd)
    finally:
        os.close(fd)
    return ShardFile(name=path.name, size_bytes=size, sha256=digest.hexdigest())


def _header(plan: list[OutputTensor]) -> bytes:
    return encode_header([(t.name, t.dtype, t.shape) for t in plan])


def _emit(fd: int, digest, data: memoryview) -> int:
    digest.update(data)
    done = 0
    while done < len(data):
        done += os.write(fd, data[done:])
    return len(data)


def _zeros(fd: int, digest, nbytes: int, chunk_bytes: int) -> int:
    block = bytes(min(nbytes, chunk_bytes))
    left = nbytes
    while left:
        left -= _emit(fd, digest, memoryview(block)[: min(left, len(block))])
    return nbytes

"""The safetensors file layout, read and written without loading tensors.

A file is an 8-byte little-endian header length N, N bytes of JSON
({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}), then the tensor bytes
(offsets are relative to the end of the header). Parsing the header ourselves lets the sharder
check every input file (corrupt header, truncation) before it writes anything, and size its output
exactly; writing it ourselves lets a rank file be streamed tensor by tensor, which
`safetensors.torch.save_file` (it wants every tensor in memory) cannot do.
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from engineforge.errors import UserError
from engineforge.model.roots import open_regular

# safetensors dtype code -> (torch dtype name, bytes per element)
DTYPES: dict[str, tuple[str, int]] = {
    "F64": ("float64", 8),
    "F32": ("float32", 4),
    "F16": ("float16", 2),
    "BF16": ("bfloat16", 2),
    "F8_E4M3": ("float8_e4m3fn", 1),
    "F8_E5M2": ("float8_e5m2", 1),
    "I64": ("int64", 8),
    "I32": ("int32", 4),
    "I16": ("int16", 2),
    "I8": ("int8", 1),
    "U8": ("uint8", 1),
    "BOOL": ("bool", 1),
}
CODE_OF_DTYPE = {name: code for code, (name, _) in DTYPES.items()}
# The safetensors library refuses headers above 100 MB. Parsing 100 MB of hostile JSON takes more
# than a gigabyte of Python objects, and a real header (a few hundred tensors a shard) is well under
# 1 MiB: larger than 16 MiB is refused as corruption.
MAX_HEADER_BYTES = 16 << 20


@dataclass(frozen=True)
class StoredTensor:
    """Where one tensor's bytes live: absolute byte offset `start` in `file`, C order."""

    file: Path
    name: str
    dtype: str  # safetensors code, e.g. "BF16"
    shape: tuple[int, ...]
    start: int

    @property
    def itemsize(self) -> int:
        return DTYPES[self.dtype][1]

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.itemsize


def read_header(path: Path) -> dict[str, StoredTensor]:
    """Parse and check a safetensors header; UserError (one line) if it is corrupt or truncated."""
    path = Path(path)
    fix = "re-download or re-save this file"
    with open_regular(path) as handle:  # a FIFO or a device is refused, never read
        size = os.fstat(handle.fileno()).st_size
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise UserError(f"{path}: not a safetensors file ({size} bytes, header length missing); {fix}")
        (length,) = struct.unpack("<Q", prefix)
        if length > MAX_HEADER_BYTES or 8 + length > size:
            raise UserError(f"{path}: corrupt safetensors header (declares {length:,} header bytes, at most "
                            f"{MAX_HEADER_BYTES:,} allowed, file has {size:,}); {fix}")
        raw = handle.read(length)
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError) as error:  # not UTF-8, not JSON, an int over 4300 digits, deep nesting
        raise UserError(f"{path}: corrupt safetensors header (not JSON: {type(error).__name__}); {fix}") from None
    if not isinstance(header, dict) or not isinstance(header.get("__metadata__", {}), dict):
        raise UserError(f"{path}: corrupt safetensors header (not a JSON object); {fix}")
    data_start = 8 + length
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        tensors[name] = _entry(path, name, entry, data_start, fix)
    _check_layout(path, tensors, data_start, size, fix)
    return tensors


def _entry(path: Path, name: str, entry: object, data_start: int, fix: str) -> StoredTensor:
    try:
        dtype, shape, (begin, end) = entry["dtype"], tuple(entry["shape"]), entry["data_offsets"]
        ok = dtype in DTYPES and all(isinstance(d, int) and d >= 0 for d in shape)
        ok = ok and isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end
    except (TypeError, KeyError, ValueError):
        ok = False
    if not ok:
        raise UserError(f"{path}: corrupt safetensors header (bad entry for tensor {name!r}); {fix}")
    tensor = StoredTensor(path, name, dtype, shape, data_start + begin)
    if end - begin != tensor.nbytes:
        raise UserError(
            f"{path}: corrupt safetensors header (tensor {name!r} spans {end - begin} bytes, "
            f"its shape and dtype need {tensor.nbytes}); {fix}"
        )
    return tensor


def _check_layout(path: Path, tensors: dict[str, StoredTensor], data_start: int, size: int, fix: str) -> None:
    # Same rule as the safetensors library: tensors tile the data area with no gap or overlap.
    position = data_start
    for tensor in sorted(tensors.values(), key=lambda t: (t.start, t.nbytes)):
        if tensor.start != position:
            raise UserError(f"{path}: corrupt safetensors header (tensor {tensor.name!r} overlaps or leaves a gap); {fix}")
        position += tensor.nbytes
    if position > size:
        raise UserError(
            f"{path}: truncated: its header promises {position} bytes, the file has {size}; {fix}"
        )
    if position < size:
        raise UserError(f"{path}: corrupt safetensors file ({size - position} bytes after the last tensor); {fix}")


def encode_header(entries: list[tuple[str, str, tuple[int, ...]]], metadata: dict[str, str] | None = None) -> bytes:
    """Header bytes (length prefix included) for tensors laid out back to back in `entries` order.

    `entries` are (name, safetensors dtype code, shape). The JSON is padded with spaces to a
    multiple of 8 bytes, as the safetensors library does, so tensor data starts aligned.
    """
    header: dict[str, object] = {"__metadata__": metadata or {"format": "pt"}}
    offset = 0
    for name, dtype, shape in entries:
        nbytes = math.prod(shape) * DTYPES[dtype][1]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw

"""Lazy, checked access to a (multi-file) Hugging Face safetensors checkpoint.

Opening a checkpoint reads only headers: every shard listed in `model.safetensors.index.json`
must exist, parse and hold the tensors the index promises, and every weight the model needs
must be there with the shape its config implies. Tensors are then addressed by *canonical*
names: the released Llama/Mixtral names (`block_sparse_moe.experts.{e}.w1.weight`, ...), each a
box of a stored tensor, so the fused layout that transformers >= 5 saves
(`mlp.experts.gate_up_proj`, `mlp.experts.down_proj`, `mlp.gate.weight`) reads the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from engineforge.checkpoint.box_reader import Box, BoxReader, FileHandles
from engineforge.checkpoint.safetensors_format import DTYPES, StoredTensor, read_header
from engineforge.errors import UserError
from engineforge.model.roots import model_files, read_regular
from engineforge.model.shape import ModelShape, read_config

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
FLOAT_CODES = ("F32", "F16", "BF16")
MAX_INDEX_BYTES = 64 << 20  # an index lists each tensor once: DeepSeek-V3's 91k tensors take 8 MiB


@dataclass(frozen=True)
class LogicalTensor:
    """A canonical tensor: the box `box` (in `stored`'s coordinates) of a stored tensor; leading
    box dimensions of extent 1 that `shape` omits are dropped (one expert of a fused tensor)."""

    name: str
    stored: StoredTensor
    box: Box
    shape: tuple[int, ...]

    def source_box(self, sub: Box | None = None) -> Box:
        """Compose a box in this tensor's coordinates with its place in the stored tensor."""
        if sub is None:
            return self.box
        lead = len(self.box) - len(sub)
        return self.box[:lead] + tuple((base + a, base + b) for (base, _), (a, b) in zip(self.box[lead:], sub))


def whole(shape: tuple[int, ...]) -> Box:
    return tuple((0, d) for d in shape)


def canonical_shapes(shape: ModelShape) -> dict[str, tuple[int, ...]]:
    """Every canonical tensor the model needs and its shape, in checkpoint order."""
    h, inter, hd = shape.hidden_size, shape.intermediate_size, shape.head_dim
    shapes = {"model.embed_tokens.weight": (shape.vocab_size, h)}
    for layer in range(shape.num_layers):
        p = f"model.layers.{layer}."
        shapes[p + "self_attn.q_proj.weight"] = (shape.num_heads * hd, h)
        shapes[p + "self_attn.k_proj.weight"] = (shape.num_kv_heads * hd, h)
        shapes[p + "self_attn.v_proj.weight"] = (shape.num_kv_heads * hd, h)
        shapes[p + "self_attn.o_proj.weight"] = (h, shape.num_heads * hd)
        if shape.is_moe:
            shapes[p + "block_sparse_moe.gate.weight"] = (shape.num_experts, h)
            for expert in range(shape.num_experts):
                e = f"{p}block_sparse_moe.experts.{expert}."
                shapes[e + "w1.weight"] = (inter, h)
                shapes[e + "w2.weight"] = (h, inter)
                shapes[e + "w3.weight"] = (inter, h)
        else:
            shapes[p + "mlp.gate_proj.weight"] = (inter, h)
            shapes[p + "mlp.up_proj.weight"] = (inter, h)
            shapes[p + "mlp.down_proj.weight"] = (h, inter)
        shapes[p + "input_layernorm.weight"] = (h,)
        shapes[p + "post_attention_layernorm.weight"] = (h,)
    shapes["model.norm.weight"] = (h,)
    shapes["lm_head.weight"] = (shape.vocab_size, h)
    return shapes


class HFCheckpoint:
    """Headers of every shard, the canonical view over them, and lazily opened file handles."""

    def __init__(self, hf_dir: Path, shape: ModelShape, stored: dict[str, StoredTensor]):
        self.dir = Path(hf_dir)
        self.shape = shape
        self.stored = stored
        self.tensors = _canonical_view(shape, stored)
        self.handles = FileHandles()

    @classmethod
    def open(cls, hf_dir: Path, shape: ModelShape) -> "HFCheckpoint":
        return cls(hf_dir, shape, read_stored_tensors(Path(hf_dir)))

    def close(self) -> None:
        self.handles.close()

    def __enter__(self) -> "HFCheckpoint":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def read(self, name: str):
        """One whole canonical tensor as a torch tensor (for verification; the sharder streams)."""
        import torch

        tensor = self.tensors[name]
        data = bytearray()
        for piece in BoxReader(self.handles).chunks(tensor.stored, tensor.source_box()):
            data += piece
        dtype = getattr(torch, DTYPES[tensor.stored.dtype][0])
        return torch.frombuffer(data, dtype=dtype).reshape(tensor.shape) if data else torch.empty(tensor.shape, dtype=dtype)


def check_model_dir(hf_dir: Path, origin: str | None = None, contained: bool = True) -> dict:
    """A model directory checked before anything loads it (`validate`, `run --dry-run`, the planner,
    `quantize`): with `contained` (a local directory), regular files only, inside it (links out, FIFOs,
    devices refused before any read); config.json read bounded, its values typed and bounded; every
    `*.safetensors` header and the index parsed and bounded (a FIFO or device among them refused).
    Without `contained` links may leave it: a hub snapshot's files link into the hub cache. Returns
    config.json; each refusal is one line naming the file."""
    hf_dir = Path(hf_dir)
    names = model_files(hf_dir) if contained else sorted(
        p.relative_to(hf_dir).as_posix() for p in hf_dir.rglob("*") if p.name.endswith(".safetensors") or p.name == INDEX_FILE)
    config = read_config(hf_dir, origin)
    if INDEX_FILE in names:
        _weight_map(hf_dir / INDEX_FILE)
    for name in names:
        if name.endswith(".safetensors"):
            read_header(hf_dir / name)
    return config


def _weight_map(index_path: Path) -> dict[str, str]:
    try:
        weight_map = json.loads(read_regular(index_path, MAX_INDEX_BYTES))["weight_map"]
    except (ValueError, KeyError, TypeError, RecursionError) as error:
        raise UserError(f"{index_path}: not a valid safetensors index ({type(error).__name__}); re-download it") from None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise UserError(f"{index_path}: not a valid safetensors index (weight_map is not names to files); re-download it")
    return weight_map


def read_stored_tensors(hf_dir: Path) -> dict[str, StoredTensor]:
    """Headers of all shards (via the index when there is one), checked against the index."""
    index_path = hf_dir / INDEX_FILE
    if index_path.is_file():
        weight_map = _weight_map(index_path)
    elif (hf_dir / SINGLE_FILE).is_file():
        weight_map = None
    else:
        raise UserError(f"{hf_dir}: neither {SINGLE_FILE} nor {INDEX_FILE} found; download the model's safetensors weights")
    files = sorted(set(weight_map.values())) if weight_map else [SINGLE_FILE]
    stored: dict[str, StoredTensor] = {}
    for filename in files:
        path = hf_dir / filename
        if not path.is_file():
            raise UserError(f"{path}: missing shard listed in {INDEX_FILE}; re-download the model")
        stored.update(read_header(path))
    for name, filename in (weight_map or {}).items():
        if name not in stored or stored[name].file.name != filename:
            raise UserError(f"{hf_dir / filename}: does not hold tensor {name!r} that {INDEX_FILE} puts there; re-download the model")
    return stored


def _canonical_view(shape: ModelShape, stored: dict[str, StoredTensor]) -> dict[str, LogicalTensor]:
    view: dict[str, LogicalTensor] = {}
    for name, expected in canonical_shapes(shape).items():
        tensor = _locate(name, shape, stored)
        if tensor is None:
            raise UserError(f"tensor {name!r} is missing from the checkpoint; re-download the model or check its config.json")
        if tensor.shape != expected:
            raise UserError(
                f"{tensor.stored.file}: tensor {tensor.stored.name!r} has shape {list(tensor.shape)}, "
                f"config.json implies {list(expected)}; the weights and config.json do not match"
            )
        if tensor.stored.dtype not in FLOAT_CODES:
            raise UserError(
                f"{tensor.stored.file}: tensor {tensor.stored.name!r} has dtype {tensor.stored.dtype}; "
                f"only {', '.join(FLOAT_CODES)} checkpoints can be sharded (quantized inputs are not supported)"
            )
        view[name] = tensor
    return view


def _locate(name: str, shape: ModelShape, stored: dict[str, StoredTensor]) -> LogicalTensor | None:
    if name == "lm_head.weight" and shape.tie_word_embeddings:
        name_in_file = "model.embed_tokens.weight"
        return _plain(name, stored.get(name_in_file))
    if name in stored:
        return _plain(name, stored[name])
    if ".block_sparse_moe." in name:
        return _fused(name, shape, stored)
    return None


def _plain(name: str, tensor: StoredTensor | None) -> LogicalTensor | None:
    return None if tensor is None else LogicalTensor(name, tensor, whole(tensor.shape), tensor.shape)


def _fused(name: str, shape: ModelShape, stored: dict[str, StoredTensor]) -> LogicalTensor | None:
    # transformers >= 5 MixtralForCausalLM: experts.gate_up_proj (E, 2*inter, hidden) holds
    # gate (w1) in rows [0, inter) and up (w3) in rows [inter, 2*inter) -- modeling_mixtral.py
    # MixtralExperts.forward: `gate, up = linear(x, gate_up_proj[e]).chunk(2, dim=-1)`;
    # experts.down_proj (E, hidden, inter) is w2; the router is mlp.gate.weight.
    prefix, rest = name.split(".block_sparse_moe.")
    if rest == "gate.weight":
        return _plain(name, stored.get(prefix + ".mlp.gate.weight"))
    _, expert, which, _ = rest.split(".")
    e, inter = int(expert), shape.intermediate_size
    if which == "w2":
        tensor = stored.get(prefix + ".mlp.experts.down_proj")
        rows = (0, shape.hidden_size)
    else:
        tensor = stored.get(prefix + ".mlp.experts.gate_up_proj")
        rows = (0, inter) if which == "w1" else (inter, 2 * inter)
    if tensor is None or len(tensor.shape) != 3 or e >= tensor.shape[0] or rows[1] > tensor.shape[1]:
        return None
    box = ((e, e + 1), rows, (0, tensor.shape[2]))
    return LogicalTensor(name, tensor, box, (rows[1] - rows[0], tensor.shape[2]))

"""Synthetic models: Llama/Mixtral-architecture checkpoints with deterministic random weights
and a locally trained byte-level BPE tokenizer with a chat template.

They make the embedded default run offline and are what the tests shard, serve and package.
Weights are generated tensor by tensor (each from its own seeded generator) and written shard by
shard, so a multi-gigabyte checkpoint never has to sit in memory whole, and the bytes depend only
on the spec, not on the order of generation.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import string
from pathlib import Path
from typing import Iterator

from engineforge.recipe.schema import SyntheticModel

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>"]
METASPACE = "\u2581"  # SentencePiece's visible space: a token's leading space decodes to " "
PRINTABLE = [chr(code) for code in range(0x21, 0x7F)] + [METASPACE]
TRAINED_VOCAB = 1024  # merges the fixed corpus can give; the ids above are filler words
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}{{ eos_token }}\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
# Fixed training text: the tokenizer (and so every token id) is the same on every machine.
TOKENIZER_CORPUS = """
The capital of France is Paris. Once upon a time there was a small model that served tokens.
def fibonacci(n): return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)
Tensor parallelism splits each weight matrix across GPUs; pipeline parallelism splits the layers.
A recipe describes the model, the runtime, the parallel layout, the build limits and the targets.
The quick brown fox jumps over the lazy dog. 0123456789 + - * / = ( ) [ ] { } < > , . ; : ! ?
Engines are built, validated under load, packaged into containers and recorded for later runs.
"""

DTYPES = {"float32": "float32", "float16": "float16", "bfloat16": "bfloat16", "auto": "float32"}


def config_fields(spec: SyntheticModel, dtype: str = "float32") -> dict:
    """The config.json fields of a synthetic spec, without importing transformers (the planner's input)."""
    fields = dict(
        architectures=["MixtralForCausalLM" if spec.architecture == "mixtral" else "LlamaForCausalLM"],
        model_type=spec.architecture,
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_key_value_heads,
        vocab_size=spec.vocab_size,
        max_position_embeddings=spec.max_position_embeddings,
        tie_word_embeddings=spec.tie_word_embeddings,
        bos_token_id=1,
        eos_token_id=2,
        rms_norm_eps=1e-5,
        torch_dtype=DTYPES[dtype],
    )
    if spec.architecture == "mixtral":
        fields.update(num_local_experts=spec.num_local_experts, num_experts_per_tok=spec.num_experts_per_tok)
    return fields


def transformers_config(spec: SyntheticModel, dtype: str = "float32"):
    """The `transformers` config object for a synthetic spec."""
    from transformers import LlamaConfig, MixtralConfig

    fields = config_fields(spec, dtype)
    config_class = MixtralConfig if fields.pop("model_type") == "mixtral" else LlamaConfig
    return config_class(**fields)


def write_synthetic_model(spec: SyntheticModel, out_dir: Path, dtype: str = "float32") -> Path:
    """Write config.json, safetensors weights (sharded when spec.max_shard_size is set) and tokenizer."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = transformers_config(spec, dtype)
    config.save_pretrained(out_dir)
    _write_generation_config(config, out_dir)
    _write_weights(spec, config, out_dir, DTYPES[dtype])
    train_tokenizer(spec.vocab_size).save_pretrained(out_dir)
    return out_dir


def train_tokenizer(vocab_size: int):
    """A BPE tokenizer over printable ASCII, trained on the fixed corpus, with exactly `vocab_size` ids.

    A random model emits any id below vocab_size, and a server streams a token only once it decodes to
    complete text: so every id must decode, on its own, to visible text. Byte-level BPE fails that
    (lone bytes >= 0x80 are half a character, ids past the trained merges decode to nothing: seen on an
    H200 as one empty event per request), so the alphabet is printable ASCII with SentencePiece's
    metaspace for spaces, and the ids past the trained ones are filler words that decode as themselves.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(
        vocab_size=min(vocab_size, TRAINED_VOCAB),
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=PRINTABLE,
        show_progress=False,
    )
    # Line by line: no newline token, which would stream as an invisible event.
    tokenizer.train_from_iterator(TOKENIZER_CORPUS.strip().splitlines() * 4, trainer=trainer)
    state = json.loads(tokenizer.to_str())
    vocab = state["model"]["vocab"]
    fillers = filler_words(vocab, vocab_size - len(vocab))
    vocab.update({word: index for index, word in enumerate(fillers, start=len(vocab))})
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(state)),
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="</s>",
        chat_template=CHAT_TEMPLATE,
    )


def filler_words(taken: dict[str, int], count: int) -> list[str]:
    """`count` distinct words not in `taken`, each a space and lowercase letters ("▁ab", "▁ac", ...): the
    ids a trained tokenizer has no text for, made to decode to a word of their own."""
    words: list[str] = []
    length = 2
    while len(words) < count:
        for letters in itertools.product(string.ascii_lowercase, repeat=length):
            word = METASPACE + "".join(letters)
            if word not in taken:
                words.append(word)
                if len(words) == count:
                    break
        length += 1
    return words


def parameter_shapes(config) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the checkpoint's tensors, read off a model built on the meta device."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return {name: tuple(param.shape) for name, param in model.named_parameters()}


def _tensor(name: str, shape: tuple[int, ...], seed: int, dtype: str):
    import torch

    if name.endswith("norm.weight"):
        return torch.ones(shape, dtype=getattr(torch, dtype))
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    generator = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))
    return (torch.randn(shape, generator=generator) * 0.02).to(getattr(torch, dtype))


def _shards(shapes: dict[str, tuple[int, ...]], max_bytes: int | None, itemsize: int) -> Iterator[list[str]]:
    group, size = [], 0
    for name, shape in shapes.items():
        nbytes = itemsize
        for dim in shape:
            nbytes *= dim
        if group and max_bytes is not None and size + nbytes > max_bytes:
            yield group
            group, size = [], 0
        group.append(name)
        size += nbytes
    if group:
        yield group


def _write_weights(spec: SyntheticModel, config, out_dir: Path, dtype: str) -> None:
    import torch
    from safetensors.torch import save_file

    shapes = parameter_shapes(config)
    itemsize = torch.tensor([], dtype=getattr(torch, dtype)).element_size()
    groups = list(_shards(shapes, _parse_size(spec.max_shard_size), itemsize))
    weight_map: dict[str, str] = {}
    total = 0
    for index, names in enumerate(groups, start=1):
        filename = "model.safetensors" if len(groups) == 1 else f"model-{index:05d}-of-{len(groups):05d}.safetensors"
        tensors = {name: _tensor(name, shapes[name], spec.seed, dtype) for name in names}
        total += sum(t.numel() * t.element_size() for t in tensors.values())
        save_file(tensors, str(out_dir / filename), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(names, filename))
        del tensors
    if len(groups) > 1:
        index_data = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (out_dir / "model.safetensors.index.json").write_text(json.dumps(index_data, indent=2) + "\n")


def _write_generation_config(config, out_dir: Path) -> None:
    generation = {"bos_token_id": config.bos_token_id, "eos_token_id": config.eos_token_id, "do_sample": False}
    (out_dir / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n")


def _parse_size(text: str | None) -> int | None:
    if text is None:
        return None
    units = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "B": 1}
    upper = text.strip().upper()
    for unit, factor in units.items():
        if upper.endswith(unit) and upper[: -len(unit)].strip().replace(".", "", 1).isdigit():
            return int(float(upper[: -len(unit)]) * factor)
    if upper.isdigit():
        return int(upper)
    raise ValueError(f'max_shard_size "{text}" must look like "500MB" or "2GB"')

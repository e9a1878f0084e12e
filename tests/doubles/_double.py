"""Shared parts of the TensorRT-LLM test doubles (see README.md): strict parsing, version, engines.

Imported by the double executables in this directory (their own directory is on sys.path).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

VERSION_SWITCH = "ENGINEFORGE_TEST_TRTLLM_VERSION"


def version() -> str:
    return os.environ.get(VERSION_SWITCH, "0.0.0+double")


def log(tool: str, message: str) -> None:
    print(f"[TensorRT-LLM test double {tool}] {message}", flush=True)


def fail(tool: str, message: str, code: int = 1) -> None:
    print(f"[TensorRT-LLM test double {tool}] error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


class StrictParser(argparse.ArgumentParser):
    """argparse without prefix matching: a flag TensorRT-LLM's parser lacks is an error (exit 2)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("add_help", True)
        super().__init__(*args, **kwargs)


def add_options(parser: argparse.ArgumentParser, names: list[str | tuple[str, ...]], flags: set[str] = frozenset(),
                choices: dict[str, tuple[str, ...]] | None = None) -> None:
    """Options taking one value, except `flags` (no value); aliases given as tuples."""
    for name in names:
        aliases = name if isinstance(name, tuple) else (name,)
        dest = aliases[0].lstrip("-").replace("-", "_")
        if aliases[0] in flags:
            parser.add_argument(*aliases, dest=dest, action="store_true")
        else:
            parser.add_argument(*aliases, dest=dest, choices=(choices or {}).get(aliases[0]))


def read_engine(engine_dir: Path, tool: str) -> dict:
    path = engine_dir / "config.json"
    if not path.is_file():
        fail(tool, f"{engine_dir} is not an engine directory (no config.json)")
    config = json.loads(path.read_text())
    for key in ("version", "pretrained_config", "build_config"):
        if key not in config:
            fail(tool, f"{path} lacks {key}")
    if config["version"] != version():
        fail(tool, f"Version tag does not match: engine built with {config['version']}, runtime is {version()}")
    world = int(config["pretrained_config"]["mapping"]["world_size"])
    for rank in range(world):
        if not (engine_dir / f"rank{rank}.engine").is_file():
            fail(tool, f"{engine_dir}/rank{rank}.engine missing")
    return config


def hf_model_from_engine(engine_dir: Path, tokenizer_dir: Path) -> Path:
    """A Hugging Face model directory with the weights the engine files carry (the double's "engine"
    files are the checkpoint's rank files), reassembled by engineforge's checkpoint reassembler."""
    from safetensors.torch import save_file

    from engineforge.verify.ckpt_reader import TrtllmCheckpoint
    from engineforge.verify.reassemble import reassemblers

    config = json.loads((engine_dir / "config.json").read_text())
    out = Path(tempfile.mkdtemp(prefix="trtllm-double-model-"))
    ckpt_dir = out / "checkpoint"
    ckpt_dir.mkdir()
    (ckpt_dir / "config.json").write_text(json.dumps(config["pretrained_config"]))
    for engine in engine_dir.glob("rank*.engine"):
        os.symlink(engine.resolve(), ckpt_dir / f"{engine.stem}.safetensors")
    weights = {name: rebuild().contiguous() for name, rebuild in reassemblers(TrtllmCheckpoint(ckpt_dir)).items()}
    model_dir = out / "model"
    shutil.copytree(tokenizer_dir, model_dir)
    save_file(weights, model_dir / "model.safetensors")
    shutil.rmtree(ckpt_dir)
    return model_dir

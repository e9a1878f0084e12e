"""Hostile local model directories meet `engineforge validate` and `run --dry-run`: real symlinks, a
real FIFO, a link to /dev/zero, garbage safetensors headers, absurd config.json values. Each is one
line naming the file or the key, exit 2, no traceback, in well under a second; before these checks a
FIFO hung both commands, a link out was copied into the store and the image, and the rest passed
`validate` to fail late with a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import struct
from contextlib import contextmanager
from pathlib import Path

import pytest

from engineforge.cli.app import main

WATCHDOG_S = 20  # a FIFO opened for reading waits forever for a writer: fail instead of hanging


@contextmanager
def watchdog(seconds: int):
    def expire(*_):
        raise TimeoutError(f"still running after {seconds} s (a blocking open or an endless read)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def refused(tmp_path: Path, capsys, model: Path, command: str) -> str:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"name: hostile\nmodel:\n  source: '{model}'\n  dtype: float32\nruntime: transformers\n")
    with watchdog(WATCHDOG_S):
        code = main([command, *(["--dry-run"] if command == "run" else []), str(recipe)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {recipe}:3: model.source: "), lines
    return lines[0]


@pytest.fixture
def model(tmp_path, tiny_model_dir) -> Path:
    """A fresh copy of the tiny synthetic checkpoint, under an allowed root, to spoil."""
    copy = tmp_path / "models" / "model"
    shutil.copytree(tiny_model_dir, copy)
    return copy


def _edit_config(model: Path, **values) -> None:
    config = json.loads((model / "config.json").read_text())
    config.update(values)
    (model / "config.json").write_text(json.dumps(config))


def _replace(path: Path) -> Path:
    path.unlink(missing_ok=True)
    return path


def _header(model: Path, raw: bytes, declared: int | None = None) -> None:
    (model / "model.safetensors").write_bytes(struct.pack("<Q", len(raw) if declared is None else declared) + raw)


# (what the directory gets, what the one line must say)
CASES = {
    "symlink to a secret outside": (lambda m: (m / "notes.txt").symlink_to(m.parent.parent / "secret" / "id_ed25519"),
                                    "notes.txt: a symlink to something outside the model directory"),
    "config.json a symlink to /dev/zero": (lambda m: _replace(m / "config.json").symlink_to("/dev/zero"),
                                          "config.json: a symlink to something outside the model directory"),
    "config.json a FIFO": (lambda m: os.mkfifo(_replace(m / "config.json")), "config.json: a FIFO (named pipe)"),
    "a FIFO beside the weights": (lambda m: os.mkfifo(m / "extra.bin"), "extra.bin: a FIFO (named pipe)"),
    "a dangling symlink": (lambda m: (m / "gone.json").symlink_to(m / "nothing"), "gone.json: a symlink to"),
    "a symlink to a directory outside": (lambda m: (m / "sub").symlink_to("/etc"), "sub: a symlink to"),
    "safetensors header garbage": (lambda m: _header(m, b"x" * 100), "model.safetensors: corrupt safetensors header (not JSON"),
    "safetensors header claims 1 TB": (lambda m: _header(m, b"{}", declared=10**12),
                                       "model.safetensors: corrupt safetensors header (declares 1,000,000,000,000 header bytes"),
    "safetensors header nested 100k deep": (lambda m: _header(m, b"[" * 100_000 + b"]" * 100_000),
                                            "model.safetensors: corrupt safetensors header (not JSON: RecursionError)"),
    "safetensors header an int of 5000 digits": (lambda m: _header(m, b'{"a": ' + b"9" * 5000 + b"}"),
                                                 "model.safetensors: corrupt safetensors header (not JSON: ValueError)"),
    "safetensors offsets beyond the file": (lambda m: _header(m, json.dumps(
        {"w": {"dtype": "F32", "shape": [10**6], "data_offsets": [0, 4 * 10**6]}}).encode()),
        "model.safetensors: truncated: its header promises"),
    "safetensors unknown dtype": (lambda m: _header(m, json.dumps(
        {"w": {"dtype": "F128", "shape": [0], "data_offsets": [0, 0]}}).encode()), "bad entry for tensor 'w'"),
    "a second shard with garbage": (lambda m: (m / "extra.safetensors").write_bytes(b"\x00" * 3),
                                    "extra.safetensors: not a safetensors file"),
    "architectures [5]": (lambda m: _edit_config(m, architectures=[5]),
                          "config.json: architectures is [5]; it must be a list of class names"),
    "intermediate_size of 401 digits": (lambda m: _edit_config(m, intermediate_size=int("9" * 401)),
                                        "config.json: intermediate_size is an integer of 401 digits; it must be an integer from 1 to 1,048,576"),
    "rope_scaling a string": (lambda m: _edit_config(m, rope_scaling="x"), "config.json: rope_scaling is \"x\"; it must be a JSON object"),
    "num_hidden_layers 10**9": (lambda m: _edit_config(m, num_hidden_layers=10**9),
                                "config.json: num_hidden_layers is 1000000000; it must be an integer from 1 to 1,024"),
    "hidden_size a boolean": (lambda m: _edit_config(m, hidden_size=True), "config.json: hidden_size is true"),
    "rms_norm_eps NaN-like huge": (lambda m: _edit_config(m, rms_norm_eps=10**400), "config.json: rms_norm_eps is an integer of 401 digits"),
    "quant_method a number": (lambda m: _edit_config(m, quantization_config={"quant_method": 7}),
                              "config.json: quantization_config.quant_method is 7"),
    "config.json an int over Python's limit": (lambda m: (m / "config.json").write_text('{"vocab_size": ' + "9" * 5000 + "}"),
                                               "config.json is not valid JSON"),
    "config.json of 5 MiB": (lambda m: (m / "config.json").write_text(" " * (5 << 20) + "{}"), "config.json: larger than 4,194,304 bytes"),
}


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_hostile_model_directory_is_one_line_naming_the_file(tmp_path, capsys, monkeypatch, model, case, command):
    secret = tmp_path / "secret" / "id_ed25519"
    secret.parent.mkdir()
    secret.write_text("PRIVATE KEY\n")
    monkeypatch.setenv("ENGINEFORGE_MODEL_ROOTS", str(model.parent))
    spoil, expected = CASES[case]
    spoil(model)
    line = refused(tmp_path, capsys, model, command)
    assert expected in line, line


def test_a_socket_in_the_model_directory_is_refused(tmp_path, capsys, model):
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(model / "control.sock"))
    try:
        assert "control.sock: a socket" in refused(tmp_path, capsys, model, "validate")
    finally:
        server.close()


def test_a_symlink_inside_the_directory_is_read_and_stored_as_a_real_file(tmp_path, capsys, model):
    """The one kind of link accepted: it names a regular file the directory already holds."""
    from engineforge.runtimes.transformers import link_model_tree
    from engineforge.sources.model_source import LocalSource, local_model_digests

    (model / "tokenizer.json").rename(model / "tokenizer.real.json")
    (model / "tokenizer.json").symlink_to("tokenizer.real.json")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"name: linked\nmodel:\n  source: '{model}'\n  dtype: float32\nruntime: transformers\n")
    assert main(["validate", str(recipe)]) == 0, capsys.readouterr().err
    digests = local_model_digests(LocalSource(model))
    assert digests["tokenizer.json"] == digests["tokenizer.real.json"]
    link_model_tree(model, tmp_path / "copy")
    copied = tmp_path / "copy" / "tokenizer.json"
    assert not copied.is_symlink() and copied.read_bytes() == (model / "tokenizer.real.json").read_bytes()


def test_the_download_stage_refuses_a_fifo_instead_of_hanging(tmp_path, model):
    """`local_model_digests` (what the download stage hashes) used to open a FIFO and wait forever."""
    from engineforge.errors import UserError
    from engineforge.sources.model_source import LocalSource, local_model_digests

    os.mkfifo(model / "weights.bin")
    with watchdog(WATCHDOG_S), pytest.raises(UserError, match="weights.bin: a FIFO"):
        local_model_digests(LocalSource(model))


def test_quantize_refuses_a_garbage_header_in_one_line(tmp_path, capsys, model):
    _header(model, b"x" * 100)
    code = main(["quantize", str(model), "--format", "int8_sq", "--out", str(tmp_path / "out"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert err.strip().splitlines() == [
        f"error: {model}/model.safetensors: corrupt safetensors header (not JSON: JSONDecodeError); re-download or re-save this file"]

"""MANIFEST.json: every file's size and sha256; one changed, missing, extra or truncated file is named."""

from pathlib import Path

from engineforge.artifacts import manifest


def entry(tmp_path: Path) -> Path:
    directory = tmp_path / "engine"
    (directory / "served").mkdir(parents=True)
    (directory / "served" / "model.safetensors").write_bytes(bytes(range(256)) * 64)
    (directory / "manifest.json").write_text("{}\n")
    manifest.write(manifest.describe(directory, "build", "k" * 64), directory)
    return directory


def test_a_described_directory_matches_and_records_sizes_hashes_key_and_tools(tmp_path):
    directory = entry(tmp_path)
    described = manifest.describe(directory, "build", "k" * 64)

    assert manifest.problems(directory, "k" * 64) == []
    assert described["files"]["served/model.safetensors"]["size"] == 256 * 64
    assert set(described["files"]) == {"served/model.safetensors", "manifest.json"}  # not MANIFEST.json itself
    assert described["tool_versions"]["engineforge"] and described["stage"] == "build"


def test_one_changed_byte_a_truncation_a_missing_or_extra_file_and_another_key_are_found(tmp_path):
    directory = entry(tmp_path)
    weights = directory / "served" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[1000] ^= 1
    weights.write_bytes(bytes(data))
    assert manifest.problems(directory) == [f"served/model.safetensors: sha256 differs from {manifest.MANIFEST}"]

    weights.write_bytes(bytes(data[:-1]))
    assert manifest.problems(directory) == [f"served/model.safetensors: {256 * 64 - 1} bytes, {manifest.MANIFEST} says {256 * 64}"]

    weights.unlink()
    (directory / "served" / "extra.bin").write_bytes(b"x")
    assert manifest.problems(directory, "other") == [f"{manifest.MANIFEST} is for key {'k' * 64}",
                                                     "served/model.safetensors: missing",
                                                     f"served/extra.bin: not in {manifest.MANIFEST}"]
    (directory / manifest.MANIFEST).write_text("{not json")
    assert manifest.problems(directory) == [f"{manifest.MANIFEST} unreadable (JSONDecodeError)"]

"""hf://datasets/ORG/NAME calibration data through huggingface_hub against the HUB DOUBLE
(tests/doubles/hub.py, a loopback hub reached through HF_ENDPOINT; the public hub is out of reach):
only the split's files are fetched, once, then read from the cache, also offline."""

from __future__ import annotations

import hashlib
import io

import pytest

from engineforge.errors import UserError
from engineforge.quantize.calibration import read_texts
from engineforge.recipe.schema import CalibrationSpec
from tests.doubles.hub import running_hub

REPO = "org/calib"
TRAIN = "data/train-00000-of-00001.parquet"


def _parquet(rows: list[str]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = io.BytesIO()
    pq.write_table(pa.table({"content": rows, "id": list(range(len(rows)))}), out)
    return out.getvalue()


FILES = {TRAIN: _parquet([f"train sample {i}" for i in range(6)]),
         "data/test-00000-of-00001.parquet": _parquet(["test sample"] * 6), "README.md": b"# calib\n"}


@pytest.fixture
def hub(monkeypatch, tmp_path):
    with running_hub(REPO, "d" * 40, FILES, repo_type="dataset") as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)  # conftest sets it for every test
        monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"))
        yield server


def spec(**fields) -> CalibrationSpec:
    return CalibrationSpec(**{"dataset": f"hf://datasets/{REPO}", "text_field": "content", "samples": 4,
                              "eval_samples": 2, **fields})


def test_hub_double_split_is_fetched_once_then_read_from_the_cache(hub, monkeypatch):
    texts = read_texts(spec())
    assert texts.calibration == [f"train sample {i}" for i in range(4)] and texts.held_out == ["train sample 4", "train sample 5"]
    assert texts.sha256 == hashlib.sha256(FILES[TRAIN]).hexdigest()
    assert hub.served == [TRAIN]  # not the test split, not the README

    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    again = read_texts(spec())
    assert again == texts and hub.served == [TRAIN]


@pytest.mark.parametrize("fields,message", [
    ({"split": "validation"}, "no .jsonl, .json, .parquet, .txt files for split 'validation'"),
    ({"text_field": "body"}, "no column 'body' (columns: content, id); set quantize.calibration.text_field"),
    ({"dataset": "hf://datasets/org/missing"}, "no such dataset on the hub"),
])
def test_hub_double_dataset_errors_are_one_line(hub, fields, message):
    with pytest.raises(UserError) as error:
        read_texts(spec(**fields))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_hub_double_offline_without_a_cached_copy_says_so(hub, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    with pytest.raises(UserError, match="not in the Hugging Face cache") as error:
        read_texts(spec())
    assert "\n" not in str(error.value) and hub.served == []


def test_cli_quantize_calibrates_on_a_hub_double_dataset(hub, tiny_model_dir, tmp_path, capsys):
    import json

    from engineforge.cli.app import main

    code = main(["quantize", str(tiny_model_dir), "--format", "fp8", "--out", str(tmp_path / "q"), "--device", "cpu",
                 "--dataset", f"hf://datasets/{REPO}", "--text-field", "content", "--samples", "4",
                 "--eval-samples", "2", "--seq-len", "16", "--max-perplexity-increase", "10",
                 "--min-token-agreement", "0", "--json"])
    out = capsys.readouterr().out
    report = json.loads(out)
    assert code == 0 and report["calibration_sha256"] == hashlib.sha256(FILES[TRAIN]).hexdigest()
    assert report["hf_quant_config"]["quantization"]["quant_algo"] == "FP8" and hub.served == [TRAIN]

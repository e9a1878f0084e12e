"""The accuracy reference of a quantized recipe is the fake-quantized model in any process: real ModelOpt
calibrates a tiny synthetic Llama, and a fresh interpreter (a worker's validate, where nothing enabled
ModelOpt's Hugging Face checkpointing) decodes what this process decodes, not the unquantized weights."""

from __future__ import annotations

import json
import subprocess
import sys

import torch

from engineforge.sources import synthetic
from engineforge.measure.reference import Reference
from engineforge.quantize.ptq import quantize_model
from engineforge.recipe.schema import QuantizeSpec, SyntheticModel

SPEC = SyntheticModel(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=512, seed=0)
PROMPT, TOKENS = "The capital of France is", 6
DECODE = ("import json, sys; from engineforge.measure.reference import Reference; "
          "print(json.dumps(Reference(sys.argv[1]).generate(sys.argv[2], int(sys.argv[3])).logprobs))")


def test_a_fresh_process_decodes_the_fake_quantized_model_not_its_unquantized_weights(tmp_path):
    source = synthetic.write_synthetic_model(SPEC, tmp_path / "model")
    spec = QuantizeSpec(format="fp8", calibration={"samples": 4, "eval_samples": 2, "seq_len": 32, "batch_size": 4})
    fakequant = quantize_model(source, spec, tmp_path / "quantized").fakequant_dir

    fresh = subprocess.run([sys.executable, "-c", DECODE, str(fakequant), PROMPT, str(TOKENS)],
                           capture_output=True, text=True, timeout=300, check=True)
    in_fresh_process = torch.tensor(json.loads(fresh.stdout.strip().splitlines()[-1]))
    quantized = torch.tensor(Reference(str(fakequant)).generate(PROMPT, TOKENS).logprobs)
    unquantized = torch.tensor(Reference(str(source)).generate(PROMPT, TOKENS).logprobs)

    assert torch.allclose(in_fresh_process, quantized, atol=1e-5), (in_fresh_process, quantized)
    assert (quantized - unquantized).abs().max() > 1e-4, "FP8 should move the logprobs at all"

import contextlib
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn


def command(
    model_dir: Path = typer.Argument(..., help="Hugging Face model directory (config.json + safetensors + tokenizer)."),
    format: str = typer.Option(..., "--format", help="fp8, int4_awq, w4a8_awq, nvfp4 (CUDA only) or int8_sq."),
    out: Path = typer.Option(..., "--out", help="Output directory (must not exist or be empty): export/, fakequant/, accuracy.json."),
    kv_cache: str = typer.Option("none", "--kv-cache", help="KV cache quantization: fp8, nvfp4 or none."),
    # A string, not a Path: Path would fold hf://datasets/ORG/NAME into hf:/datasets/...
    dataset: str = typer.Option(None, "--dataset", help="Calibration JSON-lines, text or parquet file, or hf://datasets/ORG/NAME; default: shipped set."),
    split: str = typer.Option("train", "--split", help="The hub dataset's split."),
    text_field: str = typer.Option("text", "--text-field", help="JSON field or parquet column holding each sample."),
    samples: int = typer.Option(16, "--samples", help="Calibration samples."),
    eval_samples: int = typer.Option(8, "--eval-samples", help="Held-out samples for the accuracy report."),
    seq_len: int = typer.Option(128, "--seq-len", help="Tokens per sample."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when a GPU is visible), cpu or cuda."),
    max_perplexity_increase: float = typer.Option(0.1, "--max-perplexity-increase", help="Relative; exit 1 above it."),
    min_token_agreement: float = typer.Option(0.8, "--min-token-agreement", help="Top-1 agreement; exit 1 below it."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> int:
    """Quantize a Hugging Face model with NVIDIA ModelOpt and report what it cost in accuracy."""
    import json

    from pydantic import ValidationError

    from engineforge.errors import UserError
    from engineforge.gpus import serving_device
    from engineforge.quantize.ptq import check, quantize_model
    from engineforge.recipe.schema import QuantizeSpec

    if out.exists() and any(out.iterdir()):
        raise UserError(f"--out {out}: not empty; give a new or empty directory")
    try:
        spec = QuantizeSpec(format=format, kv_cache=kv_cache, calibration={
            "dataset": dataset, "split": split, "text_field": text_field, "samples": samples,
            "eval_samples": eval_samples, "seq_len": seq_len}, gates={"max_perplexity_increase": max_perplexity_increase,
                                        "min_token_agreement": min_token_agreement})
    except ValidationError as error:
        first = error.errors()[0]
        raise UserError(f"--{'-'.join(str(p) for p in first['loc'][-1:]).replace('_', '-')}: {first['msg']}") from None
    device = serving_device(device)
    check(spec, model_dir, device)  # refusals before loading anything
    console = Console(highlight=False, stderr=as_json)
    # With --json, stdout is the report alone: ModelOpt's and transformers' prints go to stderr.
    chatter = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
    with chatter, Progress("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                           console=console, transient=True) as bar:
        task = bar.add_task(f"calibrating {format} on {device}", total=samples)
        report = quantize_model(model_dir, spec, out, device=device,
                                on_progress=lambda done, total: bar.update(task, completed=done, total=total))
    failures = report.figures.failures(spec.gates)
    if as_json:
        print(json.dumps({"export_dir": str(report.export_dir), "fakequant_dir": str(report.fakequant_dir),
                          "hf_quant_config": report.hf_quant_config, "figures": report.figures.model_dump(),
                          "calibration_sha256": report.calibration_sha256, "calibration_s": report.calibration_s,
                          "gate_failures": failures}, indent=2))
        return 1 if failures else 0
    f = report.figures
    console.print(f"{report.export_dir}  unified HF checkpoint ({report.hf_quant_config['quantization']['quant_algo']}) "
                  f"for trtllm-serve / the LLM API", markup=False)
    console.print(f"{report.fakequant_dir}  fake-quantized model (ModelOpt HF checkpointing) for the reference runtime",
                  markup=False)
    console.print(f"calibrated {report.samples} samples in {report.calibration_s:.1f} s on {device}; held-out "
                  f"{f.positions} positions: perplexity {f.source_perplexity:.3f} -> {f.quantized_perplexity:.3f} "
                  f"({f.perplexity_increase:+.2%}), top-1 agreement {f.token_agreement:.3f}, "
                  f"max relative logit error {f.max_relative_logit_error:.3f}", markup=False)
    for failure in failures:
        console.print(f"gate failed: {failure}", markup=False)
    return 1 if failures else 0

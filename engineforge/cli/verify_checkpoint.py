from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table


def command(
    ckpt_dir: Path = typer.Argument(..., help="TensorRT-LLM checkpoint directory (config.json + rank{N}.safetensors)."),
    against: Path = typer.Option(..., "--against", help="The Hugging Face model directory it was made from."),
    rtol: float = typer.Option(1e-5, "--rtol", help="Largest relative error allowed for the logits."),
    tokens: int = typer.Option(16, "--tokens", help="Length of the test sequence for the forward pass."),
    device: str = typer.Option("auto", "--device", help="auto (cuda when present), cpu or cuda."),
    forward: bool = typer.Option(True, "--forward/--no-forward", help="Also compare logits of an emulated TP/PP forward pass."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    distributed: bool = typer.Option(
        False, "--distributed", help="Run the forward pass with one process per rank (torch.distributed): real all-reduce and pipeline send/recv; no per-weight comparison."
    ),
    backend: str = typer.Option("auto", "--backend", help="With --distributed: gloo (CPU), nccl (one GPU per rank) or auto (nccl when enough GPUs)."),
    nproc: int | None = typer.Option(None, "--nproc", help="With --distributed: number of processes; must equal the checkpoint's world size."),
    timeout: float = typer.Option(300.0, "--timeout", help="With --distributed: seconds a collective may wait before the ranks give up."),
) -> int:
    """Check a TensorRT-LLM checkpoint against its Hugging Face source: every weight rebuilt from the rank
    files must equal the source, and an emulated TP/PP forward pass must match transformers' logits (exit 1 if not)."""
    if distributed:
        report = _distributed_report(ckpt_dir, against, rtol, tokens, device, forward, backend, nproc, timeout)
    else:
        from engineforge.verify.single import verify_checkpoint

        report = verify_checkpoint(ckpt_dir, against, rtol=rtol, tokens=tokens, device=None if device == "auto" else device, forward=forward)
    if as_json:
        print(report.model_dump_json(indent=2))
        return 0 if report.ok else 1
    table = Table("check", "max rel. error", "result", box=None, highlight=False)
    rows = report.checks + ([report.logits] if report.logits else [])
    for check in rows:
        error = "" if check.max_rel_error is None else f"{check.max_rel_error:.3g}"
        result = "ok" if check.ok else f"MISMATCH {check.problem or ''}".strip()
        table.add_row(check.name, error, result)
    console = Console(highlight=False)
    console.print(table)
    failed = sum(not c.ok for c in rows)
    where = f"{report.backend}, {report.world_size} processes" if distributed else report.device
    logits = f"logits max rel. error {report.logits.max_rel_error:.3g} (rtol {rtol:g}, {where})" if report.logits else "logits not compared"
    console.print(f"{len(rows) - failed}/{len(rows)} checks ok; {logits}", markup=False)
    return 0 if report.ok else 1


def _distributed_report(ckpt_dir: Path, against: Path, rtol: float, tokens: int, device: str, forward: bool, backend: str, nproc, timeout: float):
    from engineforge.errors import UserError
    from engineforge.verify.distributed import verify_distributed

    if not forward:
        raise UserError("--no-forward with --distributed: the distributed mode is the forward pass; drop one of them")
    if device != "auto":
        raise UserError(f"--device {device} with --distributed: the backend picks the device (gloo: CPU, nccl: one GPU per rank); drop --device")
    return verify_distributed(ckpt_dir, against, rtol=rtol, tokens=tokens, backend=backend, nproc=nproc, timeout_s=timeout)

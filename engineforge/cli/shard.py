import os
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


def command(
    model_dir: Path = typer.Argument(..., help="Hugging Face model directory (config.json + safetensors)."),
    out: Path = typer.Option(..., "--out", help="Output directory (must not exist or be empty)."),
    tp: int = typer.Option(1, "--tp", help="Tensor parallel size."),
    pp: int = typer.Option(1, "--pp", help="Pipeline parallel size."),
    ep: int = typer.Option(1, "--ep", help="Expert parallel size (MoE; must divide --tp)."),
    dtype: str = typer.Option("auto", "--dtype", help="auto (keep), float32, float16 or bfloat16."),
    workers: int = typer.Option(0, "--workers", help="Rank files written at once (0: one per CPU, at most world size)."),
    memory_budget_mib: int = typer.Option(0, "--memory-budget-mib", help="Cap on tensor bytes held at once, MiB (0: no cap)."),
    hash_outputs: bool = typer.Option(False, "--hash", help="Compute each rank file's sha256 for the report (costs CPU; off by default)."),
    as_json: bool = typer.Option(False, "--json", help="Print the shard report as JSON."),
) -> int:
    """Shard a Hugging Face checkpoint into a TensorRT-LLM checkpoint (config.json + rank{N}.safetensors), streamed."""
    from engineforge.checkpoint.shard import shard_checkpoint

    console = Console(highlight=False, stderr=as_json)
    columns = ("{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("sharding", total=None)
        report = shard_checkpoint(
            model_dir,
            out,
            tp=tp,
            pp=pp,
            ep=ep,
            dtype=dtype,
            workers=workers or os.cpu_count() or 1,
            memory_budget_bytes=memory_budget_mib << 20 or None,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            hash_outputs=hash_outputs,
        )
    if as_json:
        print(report.model_dump_json(indent=2))
        return 0
    for file in report.files:
        digest = f"  sha256 {file.sha256}" if file.sha256 else ""
        console.print(f"{report.out_dir / file.name}  {file.size_bytes:>14,d} B{digest}", markup=False)
    peak = f", peak RSS {report.peak_rss_bytes / 2**20:,.0f} MiB" if report.peak_rss_bytes else ""
    console.print(
        f"{report.architecture} tp={report.tp} pp={report.pp} ep={report.ep} {report.dtype}: "
        f"{report.output_bytes / 1e9:.2f} GB in {report.wall_s:.1f} s with {report.workers} worker(s){peak}",
        markup=False,
    )
    return 0

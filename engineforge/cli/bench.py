from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import typer
from rich.console import Console

from engineforge.errors import UserError

DEFAULT_PROMPTS = ["The capital of France is", "Once upon a time", "def fibonacci(n):"]
ACCURACY_PROMPTS = 16  # each is decoded in-process by the reference model: slow on a CPU


def command(
    endpoint: str = typer.Option(..., "--endpoint", help="Server base URL, e.g. http://127.0.0.1:8000."),
    model: str = typer.Option(..., "--model", help="Model name sent in requests (a directory also serves as tokenizer)."),
    api: str = typer.Option("completions", "--api", help="completions or chat."),
    concurrency: int | None = typer.Option(None, "--concurrency", min=1, help="Requests in flight (default 1; with --request-rate: the cap, default none)."),
    request_rate: float | None = typer.Option(None, "--request-rate", min=0.0, help="Requests/s, gamma arrivals (Poisson at burstiness 1)."),
    burstiness: float = typer.Option(1.0, "--burstiness", help="Gamma shape of inter-arrival times; below 1 is burstier."),
    sweep: str | None = typer.Option(None, "--sweep", help="Concurrency levels, e.g. 1,4,16,32: one run each."),
    requests: int = typer.Option(32, "--requests", min=1, help="Measured requests (per level in a sweep)."),
    warmup: int = typer.Option(2, "--warmup", min=0, help="Warm-up requests, left out of the figures."),
    input_len: int | None = typer.Option(None, "--input-len", help="Synthetic prompts of this many tokens (mean)."),
    input_stdev: float = typer.Option(0.0, "--input-stdev", help="Stdev of synthetic prompt lengths."),
    output_len: int = typer.Option(16, "--output-len", min=1, help="Tokens to generate (mean for synthetic prompts)."),
    output_stdev: float = typer.Option(0.0, "--output-stdev", help="Stdev of synthetic output lengths."),
    tokenizer: str | None = typer.Option(None, "--tokenizer", help="Tokenizer for --input-len; default: --model if it is a directory."),
    dataset: Path | None = typer.Option(None, "--dataset", help="TensorRT-LLM .jsonl (task_id, prompt|input_ids, output_tokens) or .json list of prompts."),
    prompt: list[str] = typer.Option([], "--prompt", help="A prompt (repeat for more); default: three short prompts."),
    ignore_eos: bool = typer.Option(False, "--ignore-eos", help="Ask for exactly the output length."),
    ignore_eos_style: str = typer.Option("field", "--ignore-eos-style", help="field (TensorRT-LLM, vLLM) or generation_config (transformers serve)."),
    temperature: float | None = typer.Option(None, "--temperature", help="Sent when given; 0 is greedy."),
    timeout: float = typer.Option(600.0, "--timeout", help="Limit of one request in seconds."),
    seed: int = typer.Option(0, "--seed", help="Seed of arrivals and synthetic prompts."),
    as_json: bool = typer.Option(False, "--json", help="Print the results JSON (config, figures, every request) to stdout; the tables go to stderr."),
    out: Path | None = typer.Option(None, "--out", help="Also write the results JSON to this file."),
    plots: Path | None = typer.Option(None, "--plots", help="Write PNG plots (latency CDF; sweep curves) into this directory."),
    reference: str | None = typer.Option(None, "--reference", help="Also check accuracy: greedy-decode the prompts with this source model in-process."),
    roofline_model: Path | None = typer.Option(None, "--roofline-model", help="Model directory for the decode roofline (default: --model if a directory; needs a GPU or --gpu)."),
    gpu: str | None = typer.Option(None, "--gpu", help="GPU for the roofline when none is detected (e.g. H100-SXM)."),
    dtype: str = typer.Option("auto", "--dtype", help="Model dtype for the roofline and the accuracy reference."),
    recipe: Path | None = typer.Option(None, "--recipe", help="Check the figures against this recipe's validate.gates (exit 1 if one fails)."),
    repeats: int = typer.Option(1, "--repeats", min=1, max=100, help="Run the load this many times: each figure as mean ± 95 % interval (Student's t), n and per-repeat values; gates judged on the interval's conservative end."),
    cooldown: float = typer.Option(0.0, "--cooldown", min=0.0, help="Idle seconds between two repeats."),
) -> int:
    """Benchmark an OpenAI-compatible streaming endpoint: throughput, TTFT, TPOT, ITL, E2E latency."""
    from engineforge.loadgen import BenchConfig
    from engineforge.loadgen.datasets import choose_samples
    from engineforge.loadgen.sweep import parse_levels
    from engineforge.measure.measurement import AccuracyCheck, RooflineCheck
    from engineforge.recipe.file import load_recipe

    console = Console(highlight=False, soft_wrap=True, stderr=as_json)  # stdout holds only the JSON
    if api not in ("completions", "chat"):
        raise UserError(f"--api {api}: use completions or chat")
    if ignore_eos_style not in ("field", "generation_config"):
        raise UserError(f"--ignore-eos-style {ignore_eos_style}: use field or generation_config")
    if sweep and request_rate is not None:
        raise UserError("--sweep and --request-rate both given; a sweep varies concurrency at full speed, drop one")
    if sweep and repeats > 1:
        raise UserError("--repeats with --sweep: repeat one concurrency at a time (drop --sweep or use --repeats 1)")
    levels = parse_levels(sweep) if sweep else None
    model_dir = Path(model) if Path(model).is_dir() else None
    samples = choose_samples(
        dataset, input_len, output_len, input_stdev, output_stdev,
        tokenizer or (str(model_dir) if model_dir else None), prompt or DEFAULT_PROMPTS, requests, seed,
    )
    in_flight = concurrency or (requests if request_rate is not None else 1)
    try:
        config = BenchConfig(
            endpoint=endpoint, model=model, api=api, prompts=samples, requests=requests, concurrency=in_flight,
            warmup_requests=warmup, max_tokens=output_len, request_rate=request_rate, burstiness=burstiness,
            seed=seed, timeout_s=timeout, temperature=temperature, ignore_eos=ignore_eos,
            ignore_eos_style=ignore_eos_style,
        )
    except ValueError as error:
        raise UserError(_first_problem(error)) from None
    _refuse_a_rejected_ignore_eos(config)
    text_prompts = [s.prompt for s in samples if isinstance(s.prompt, str)]
    if reference is not None and not text_prompts:
        raise UserError("--reference needs text prompts (token-id datasets cannot be decoded both ways)")
    accuracy = AccuracyCheck(reference_model=reference, prompts=text_prompts[:ACCURACY_PROMPTS],
                             dtype="float32" if dtype == "auto" else dtype) if reference is not None else None
    roofline_dir = roofline_model or model_dir
    roofline = RooflineCheck(model_dir=roofline_dir, gpu=gpu, dtype=dtype,
                             required=roofline_model is not None) if roofline_dir is not None else None
    gates = load_recipe(recipe).validate_.gates if recipe is not None else None
    if repeats > 1:
        return _repeated(lambda: _measure(config, None, accuracy, roofline, None, console), repeats, cooldown,
                         gates, recipe, as_json, out, plots, console)
    measured = _measure(config, levels, accuracy, roofline, gates, console)
    _write(measured, out, plots, console)
    _print(measured, console, recipe)
    if as_json:
        print(json.dumps((measured.sweep or measured.result).to_json(), indent=1))
    _fail_if_nothing_answered(measured)
    if measured.gates is not None:
        measured.gates.raise_if_failed("bench", with_table=False)
    return 0


def _repeated(measure_once, repeats: int, cooldown: float, gates, recipe: Path | None, as_json: bool,
              out: Path | None, plots: Path | None, console: Console) -> int:
    from engineforge.cli import bench_repeats

    measured = bench_repeats.measure_repeats(measure_once, repeats, cooldown)
    console.print(bench_repeats.interval_table(measured))
    for error in _distinct_errors(record for m in measured for record in m.result.records):
        console.print(f"request error: {error}", markup=False)
    verdict = bench_repeats.judged_gates(gates, measured) if gates is not None else None
    if verdict is not None:
        console.print(verdict.to_rich() if verdict.results else f"{recipe}: no gates set in validate.gates")
    data = bench_repeats.interval_json(measured)
    if out is not None:
        out.write_text(json.dumps(data, indent=1))
        console.print(f"results: {out}", markup=False)
    if plots is not None:
        from engineforge.measure.plots import latency_cdf

        written = latency_cdf({f"repeat {n}": m.result for n, m in enumerate(measured, 1)}, plots / "latency_cdf.png")
        console.print(f"plots: {written}", markup=False)
    if as_json:
        print(json.dumps(data, indent=1))
    for one in measured:
        _fail_if_nothing_answered(one)
    if verdict is not None:
        verdict.raise_if_failed("bench", with_table=False)
    return 0


def _fail_if_nothing_answered(measured) -> None:
    """Exit 1 with the cause when no request succeeded: figures of nothing are not a benchmark."""
    from engineforge.errors import StageFailed

    if measured.figures.get("completed", 0) == 0:
        first = next((record.error for record in measured.result.records if record.error), "unknown error")
        raise StageFailed("bench", f"all {int(measured.figures.get('requests', 0))} requests failed; first: {first}")


def _refuse_a_rejected_ignore_eos(config) -> None:
    """`--ignore-eos` (the `field` style) sends `ignore_eos` and `min_tokens`; a server that rejects those fields
    (transformers serve: HTTP 422 `Unexpected fields`) would fail every request, so one request of one token
    asks first and the command stops with what to use instead. A server that cannot be reached is left to the
    load, which reports it."""
    if not config.ignore_eos or config.ignore_eos_style != "field":
        return
    import httpx

    from engineforge.loadgen.body import request_body

    body = request_body(config, config.sample(0)) | {"max_tokens": 1, "min_tokens": 1}
    try:
        with httpx.stream("POST", config.url(), json=body, headers=config.headers, timeout=config.timeout_s) as response:
            if response.status_code < 400:
                return
            answer = " ".join(response.read().decode(errors="replace").split())[:300]
    except httpx.HTTPError:
        return
    if "ignore_eos" in answer or "min_tokens" in answer:
        raise UserError(f"--ignore-eos: the server rejects the ignore_eos field (HTTP {response.status_code}: {answer}); "
                        "for transformers serve use --ignore-eos-style generation_config")


def _first_problem(error: ValueError) -> str:
    errors = getattr(error, "errors", lambda: [])()
    if errors:
        field = ".".join(str(part) for part in errors[0]["loc"])
        return f"{field}: {errors[0]['msg']}"
    return str(error)


def _measure(config, levels, accuracy, roofline, gates, console: Console):
    from engineforge.measure.measurement import measure

    total = config.requests if levels is None else sum(max(config.requests, 4 * level) for level in levels)
    with _progress(console, total) as advance:
        return measure(config, levels, accuracy, roofline, gates, on_record=lambda record: advance())


def _write(measured, out: Path | None, plots: Path | None, console: Console) -> None:
    if out is not None:
        (measured.sweep or measured.result).write_json(out)
        console.print(f"results: {out}", markup=False)
    if plots is not None:
        from engineforge.measure.plots import latency_cdf, sweep_plot

        if measured.sweep is None:
            points = {f"concurrency {measured.result.config.concurrency}": measured.result}
        else:
            points = {f"c={p.config.concurrency}": p for p in measured.sweep.points}
        written = [latency_cdf(points, plots / "latency_cdf.png")]
        if measured.sweep is not None:
            written.append(sweep_plot(measured.sweep, plots / "sweep.png"))
        console.print("plots: " + ", ".join(str(path) for path in written), markup=False)


@contextlib.contextmanager
def _progress(console: Console, total: int) -> Iterator[Callable[[], None]]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (TextColumn("requests"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("requests", total=total)
        yield lambda: progress.advance(task)


def _print(measured, console: Console, recipe: Path | None) -> None:
    from engineforge.loadgen.report import summary_tables, sweep_table

    if measured.sweep is not None:
        console.print(sweep_table(measured.sweep))
    for item in measured.accuracy.prompts if measured.accuracy is not None else ():
        where = "identical" if item.first_divergence is None else f"first divergence at token {item.first_divergence}"
        console.print(f"accuracy prompt {item.prompt_index}: agreement {item.agreement:.2f}, {where}"
                      + (f" ({item.error})" if item.error else ""), markup=False)
    if measured.sweep is not None:
        console.print("last level:", markup=False)
    for table in summary_tables(measured.figures):
        console.print(table)
    for error in _distinct_errors(measured.result.records):  # `errors 4` alone does not say what to fix
        console.print(f"request error: {error}", markup=False)
    if measured.gates is not None:
        if measured.gates.results:
            console.print(measured.gates.to_rich())
        else:
            console.print(f"{recipe}: no gates set in validate.gates", markup=False)


def _distinct_errors(records, most: int = 3) -> list[str]:
    """The first `most` different error messages of the failed requests, in the order they happened."""
    return list(dict.fromkeys(record.error for record in records if record.error))[:most]

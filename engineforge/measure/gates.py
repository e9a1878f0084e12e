"""SLO gates: compare the validation figures with the targets in the recipe's `validate.gates`.

A gate left unset is not checked. A figure that was not measured (missing or NaN) fails its
gate, which says why the figure is missing: a build may not ship on a number nobody saw.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel

from engineforge.errors import StageFailed
from engineforge.recipe.schema import Gates

# gate field -> (figure it reads, how the figure must compare with the target)
GATE_FIGURES: dict[str, tuple[str, Literal[">=", "<="]]] = {
    "min_output_tokens_per_s": ("output_tokens_per_s", ">="),
    "max_ttft_ms_p99": ("ttft_ms_p99", "<="),
    "max_tpot_ms_p50": ("tpot_ms_p50", "<="),
    "max_error_rate": ("error_rate", "<="),
    "min_token_agreement": ("token_agreement", ">="),
}


class GateResult(BaseModel):
    gate: str
    figure: str
    op: Literal[">=", "<="]
    target: float
    measured: float | None
    passed: bool
    missing_reason: str | None = None  # why `measured` is None


NO_GATES = "none"


class GateReport(BaseModel):
    results: list[GateResult]

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.results)

    @property
    def failed(self) -> list[GateResult]:
        return [result for result in self.results if not result.passed]

    def raise_if_failed(self, stage: str, with_table: bool = True) -> None:
        """StageFailed naming the failed gates, or the whole table (for logs without the rich one)."""
        if self.passed:
            return
        if with_table:
            raise StageFailed(stage, "gates failed\n" + self.to_text())
        raise StageFailed(stage, "gates failed: " + ", ".join(result.gate for result in self.failed))

    @property
    def verdict(self) -> str:
        """passed | failed | none (the recipe sets no gate: nothing was checked, so nothing `passed`)."""
        if not self.results:
            return NO_GATES
        return "passed" if self.passed else "failed"

    def rows(self) -> list[tuple[str, str, str, str]]:
        return [
            (r.gate, f"{r.op} {_number(r.target)}", _measured(r),
             "pass" if r.passed else "FAIL")
            for r in self.results
        ]

    def to_text(self) -> str:
        """A plain table, for logs and error messages."""
        header = ("gate", "target", "measured", "result")
        rows = [header, *self.rows()]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)

    def to_rich(self):
        from rich.table import Table

        table = Table(title=f"gates: {self.verdict}", title_justify="left")
        for column, justify in (("gate", "left"), ("target", "right"), ("measured", "right"), ("result", "left")):
            table.add_column(column, justify=justify)
        for (gate, target, measured, result), r in zip(self.rows(), self.results):
            table.add_row(gate, target, measured, result, style=None if r.passed else "bold red")
        return table


def _measured(result: GateResult) -> str:
    if result.measured is not None:
        return _number(result.measured)
    return f"not measured: {result.missing_reason}" if result.missing_reason else "not measured"


def _number(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"


def judged_figures(figures: dict[str, float], repeats: list[dict[str, float]]) -> dict[str, float]:
    """What the gates judge: with two or more repeats, each gated figure's pessimistic end of its 95 % interval
    (a floor on the lower, a ceiling on the upper end), so a gate passes only what the noise cannot take back;
    with one measurement, the figures themselves."""
    from engineforge.measure import intervals

    return intervals.conservative(figures, repeats, {figure: op for figure, op in GATE_FIGURES.values()})


def evaluate_gates(gates: Gates, figures: dict[str, float], missing: dict[str, str] | None = None) -> GateReport:
    """`missing`: why figures have no value (BenchResult.missing); a figure absent from `figures` altogether
    was not asked of this run (e.g. token agreement without a reference)."""
    results = []
    for gate, (figure, op) in GATE_FIGURES.items():
        target = getattr(gates, gate)
        if target is None:
            continue
        value = figures.get(figure)
        measured = None if value is None or not math.isfinite(value) else float(value)
        passed = measured is not None and (measured >= target if op == ">=" else measured <= target)
        reason = None if measured is not None else (missing or {}).get(figure) or (None if figure in figures else "not measured by this run")
        results.append(GateResult(gate=gate, figure=figure, op=op, target=target, measured=measured, passed=passed,
                                  missing_reason=reason))
    return GateReport(results=results)


def validation_rows(figures: dict[str, Any], gates=None, missing: dict[str, str] | None = None,
                    repeats: list[dict[str, float]] | None = None) -> list[dict[str, str]]:
    """One row per figure, with its gate (target and verdict) where the recipe sets one; a figure nothing
    measured says why (`missing`), never NaN. With two or more `repeats` (each repeat's figures) the figures
    are their means and a gate judges its interval's pessimistic end, as the run's verdict does
    (judged_figures): the column `judged` shows that bound."""
    repeats = repeats or []
    judged = judged_figures(figures, repeats)
    verdicts = {result.figure: result for result in evaluate_gates(gates, judged, missing).results} if gates else {}
    rows = []
    for name, value in figures.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        gate = verdicts.get(name)
        row = {
            "figure": name,
            "value": f"missing: {(missing or {}).get(name, 'not measured')}" if not math.isfinite(value) else _number(value),
        }
        if len(repeats) >= 2:
            bounded = gate is not None and gate.measured is not None
            row["judged"] = f"{'lower' if gate.op == '>=' else 'upper'} end {_number(gate.measured)}" if bounded else ""
        rows.append(row | {
            "gate": f"{gate.op} {_number(gate.target)}" if gate else "",
            "result": ("pass" if gate.passed else "FAIL") if gate else "",
        })
    return rows

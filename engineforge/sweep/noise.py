"""What a sweep's table says about how its figures were measured: in which order, and where a server drifted."""

from __future__ import annotations

from engineforge.recipe.schema import SweepSpec
from engineforge.sweep.table import VariantRecord

DRIFT_SUFFIX = "_drift"  # <objective>_drift: (last repeat - first repeat) / first, on the variant's run


def order_notes(sweep: SweepSpec, deployment: bool, measured: list[tuple[str, int]], started_beside: int = 0) -> list[str]:
    """How the repeats were taken, so the intervals are read for what they measured."""
    if sweep.repeats == 1:
        return []
    cooldown = f", {sweep.cooldown_s:g} s idle between two" if sweep.cooldown_s else ""
    if deployment:
        return [f"Repeats: {sweep.repeats} per variant, measured on the workers that ran them, each variant's back "
                f"to back, variants side by side (not interleaved: the workers do not share turns){cooldown}."]
    if sweep.order == "blocked":
        notes = [f"Repeats: {sweep.repeats} per variant back to back on one server (sweep.order: blocked), one variant "
                 f"at a time{cooldown}: the intervals hold the spread within one server only, not between servers."]
    else:
        notes = [f"Repeats: {sweep.repeats} per variant, interleaved (one measurement at a time, round-robin over the "
                 f"variants ready to measure), each on a freshly started server{cooldown}."]
        if started_beside:
            notes.append(f"{started_beside} of those servers started while another measured (the runtime's servers "
                         "share the device, so the next one starts during the load; the turn holds only the load).")
    if measured:
        notes.append("Measured in this order: " + ", ".join(f"{name}#{repeat + 1}" for name, repeat in measured) + ".")
    return notes


def drifts(records: list[VariantRecord], objective: str) -> dict[str, float]:
    """Each repeated variant's relative change of the objective from its first repeat to its last."""
    found = {}
    for record in records:
        values = record.interval(objective).values
        if len(values) >= 3 and values[0]:
            found[record.name] = (values[-1] - values[0]) / values[0]
    return found


def drift_notes(records: list[VariantRecord], objective: str) -> list[str]:
    """A warning per variant whose first and last repeats differ by more than its interval's half width."""
    notes = []
    for record in records:
        stats = record.interval(objective)
        if stats.drifted():
            notes.append(f"Drift: {record.name}'s {objective} went from {stats.values[0]:,.1f} (first repeat) to "
                         f"{stats.values[-1]:,.1f} (last), more than its interval (± {stats.half_width:,.1f}): "
                         "a warming or degrading server; its mean hides a trend.")
    return notes

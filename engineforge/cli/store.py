from enum import Enum
from pathlib import Path

import typer
from rich.console import Console


class Action(str, Enum):
    verify = "verify"


def command(
    action: Action = typer.Argument(..., help="verify"),
    repair: bool = typer.Option(False, "--repair", help="Remove damaged entries (the next run recomputes them) and dead writers' temporary directories."),
    store: Path = typer.Option(None, "--store", help="Content-addressed store (default $ENGINEFORGE_STORE or .engineforge/store)."),
) -> int:
    """Hash every file of every store entry against its manifest; exit 1 when one is damaged (unless repaired)."""
    from engineforge.artifacts.store import Store

    console = Console(highlight=False, soft_wrap=True)
    checked = Store(store.resolve() if store else None)
    damaged, count = 0, 0
    for stage, key in checked.entries():
        count += 1
        problems = checked.problems(stage, key, full=True)
        if problems:
            damaged += 1
            for problem in problems:
                console.print(f"damaged {problem}", markup=False)
            if repair:
                checked.discard(stage, key)
                console.print(f"removed {stage}/{key[:12]} (the next run recomputes it)", markup=False)
    for path in checked.sweep() if repair else checked.leftovers():
        console.print(f"removed {path} (its writer is dead)" if repair else
                      f"stale {path} (its writer is dead; --repair removes it)", markup=False)
    console.print(f"{count} entries in {checked.root}: {count - damaged} intact, {damaged} damaged"
                  + (" and removed" if repair and damaged else ""), markup=False)
    return 1 if damaged and not repair else 0

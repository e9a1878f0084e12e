"""The `engineforge` console script: one command per module in engineforge/cli/.

A command's module is imported only when that command runs (HelpGroup), and command modules keep
heavy imports (torch, transformers, mlflow, prefect) inside their functions, so that a command
starts, and `engineforge run` prints its first line, without waiting for the others' imports.
"""

from __future__ import annotations

import errno
import importlib
import logging
import os
import re
import shutil
import sys

import typer
from rich.console import Console
from typer.core import TyperCommand, TyperGroup

from engineforge.errors import EngineForgeError

# command name -> module under engineforge.cli exposing `command`
COMMANDS = {
    "run": "run",
    "validate": "validate",
    "schema": "schema",
    "plan": "plan",
    "shard": "shard",
    "quantize": "quantize",
    "verify-checkpoint": "verify_checkpoint",
    "bench": "bench",
    "submit": "submit",
    "worker": "worker",
    "server": "server",
    "compare": "compare",
    "doctor": "doctor",
    "store": "store",
    "tracking": "tracking",
    "pull": "pull",
}


def _plain_metavars(params):
    """`RECIPE` for an argument and `<path>...` for its type where typer shows `<list[Path]>`, nothing
    after a flag (typer shows `<bool>`), the name after a repeatable option (typer: `<list[str]>`)."""
    for param in params:
        if param.param_type_name == "argument" and param.nargs != 1:
            _show_element_type(param)
        if param.metavar is not None:
            continue
        if param.param_type_name == "argument":
            param.metavar = param.name.upper()
        elif getattr(param, "is_flag", False):
            param.metavar = ""
        elif getattr(param, "multiple", False):
            param.metavar = param.name.upper()
    return params


def _show_element_type(param) -> None:
    typed = type(param).display_type_rich

    def display(ctx):
        text = typed(param, ctx)
        return re.sub(r"^<list\[(\w+)\]>$", lambda found: f"<{found[1].lower()}>...", text) if text else text

    param.display_type_rich = display


class HelpCommand(TyperCommand):
    """Help as a user reads it: `engineforge run [OPTIONS] RECIPE`, not typer's `{recipe}`."""

    def get_params(self, ctx):
        return _plain_metavars(super().get_params(ctx))

    def collect_usage_pieces(self, ctx):
        return [re.sub(r"^\{(.+)\}", r"\1", piece) for piece in super().collect_usage_pieces(ctx)]


class HelpGroup(TyperGroup):
    """The commands of COMMANDS, each module imported only when its command is asked for: `engineforge
    run` prints its first line without importing every other command's dependencies first."""

    def get_params(self, ctx):
        return _plain_metavars(super().get_params(ctx))

    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        command = importlib.import_module(f"engineforge.cli.{COMMANDS[name]}").command
        single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
        single.command(name, help=command.__doc__, cls=HelpCommand)(command)
        return typer.main.get_command(single)  # one command and no callback: the command itself


app = typer.Typer(
    name="engineforge",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=HelpGroup,
    help="Turn a recipe (model, runtime, parallelism, limits, targets) into a validated, packaged, recorded model.",
)


def _print_version(wanted: bool) -> None:
    if wanted:
        from importlib.metadata import version

        print(f"engineforge {version('engineforge')}")
        raise typer.Exit()


@app.callback()
def _options(
    _version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                  help="Print engineforge's version and exit."),
) -> None:
    pass


err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors print one line (exit 2), failed runs one line (exit 1)."""
    # MLflow logs each SQLAlchemy error before raising it; the raised error says the same (and a full disk one line).
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    try:
        result = app(args=argv, standalone_mode=False)
    except EngineForgeError as error:
        for line in str(error).splitlines():
            err_console.print(f"error: {line}", markup=False)
        return error.exit_code
    except typer.Exit as done:
        return done.exit_code
    except typer.Abort:
        err_console.print("aborted", markup=False)
        return 130
    except typer.TyperException as error:  # usage errors: missing argument, bad option value
        show = getattr(error, "show", None)
        show() if show else err_console.print(f"error: {error}", markup=False)
        return 2
    except Exception as error:
        if (line := _disk_full(error)) is None:
            raise
        err_console.print(f"error: {line}", markup=False)
        return 1
    return result if isinstance(result, int) else 0


def _disk_full(error: BaseException) -> str | None:
    """One line for a full disk anywhere in `error`'s chain (SQLite's "database or disk is full" under
    the tracking database, or ENOSPC): the path and its free space; None for any other error."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return _full_line(error.filename or _fullest_place())
        if "database or disk is full" in str(error):
            if database := _tracking_database():
                return _full_line(database)
            return "disk full under the MLflow tracking database (see the recipe's tracking.uri); free space there, and run again"
        error = error.__cause__ or error.__context__
    return None


def _fullest_place() -> str:
    """For an ENOSPC that names no file (a copy's write, as MLflow logs an artifact): of the places a
    run writes (the SQLite tracking database, its artifacts beside it, the store, the current directory),
    the one with the least free space."""
    from engineforge.settings import settings

    database = _tracking_database()
    places = [database, os.path.join(os.path.dirname(database), "mlartifacts")] if database else []  # mlflow_runs._artifact_location
    return min([*places, str(settings().STORE), os.getcwd()], key=_free_bytes)


def _tracking_database() -> str | None:
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    return uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else None


def _free_bytes(path: str) -> float:
    """Free bytes in the directory `path` or, for a file, the directory that holds it."""
    try:
        return shutil.disk_usage(path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))).free
    except OSError:  # not there (yet): not where the disk filled
        return float("inf")


def _full_line(path: str) -> str:
    free = _free_bytes(path)
    free = "free space unknown" if free == float("inf") else f"{free / 2**20:.1f} MiB free"
    return f"disk full under {path} ({free}); free space there, or point MLFLOW_TRACKING_URI / --store elsewhere, and run again"


if __name__ == "__main__":
    sys.exit(main())

"""`engineforge run` prints its first line before it imports Prefect, MLflow, torch or transformers
(seconds of imports on this machine), the reason the line comes at once: the real console script
under `python -X importtime`, whose import lines and the CLI's output share one unbuffered pipe in
the order they happened. PREFECT_API_URL points at a port nobody listens on, so the run stops at
its one-line probe error and starts no server."""

import re
import subprocess
import sys
from pathlib import Path

from prefect_services import tiny_recipe

from engineforge.processes.serving import free_port

CONSOLE_SCRIPT = Path(sys.executable).with_name("engineforge")
HEAVY = re.compile(r"^import time:.*\|\s+(prefect|mlflow|torch|transformers)(\.\w+)*$")


def test_the_first_line_comes_before_any_heavy_import(tmp_path):
    recipe = tmp_path / "first.yaml"
    recipe.write_text(tiny_recipe("first-line"))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONUNBUFFERED": "1",
           "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api", "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'm.db'}"}
    done = subprocess.run([sys.executable, "-X", "importtime", str(CONSOLE_SCRIPT), "run", recipe.name], cwd=tmp_path,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    lines = done.stdout.splitlines()
    first = lines.index(f"engineforge run {recipe.name}: checking the recipe; Prefect API starting")
    assert not [line for line in lines[:first] if HEAVY.match(line)]
    assert any(HEAVY.match(line) for line in lines[first:]), "the run went on to its work's imports"
    # Threads import while the CLI prints, so import lines may land after (or glued to) the error line.
    errors = [line for line in lines[first:] if "does not answer" in line]
    assert done.returncode == 2 and len(errors) == 1, lines[-5:]
    assert "Traceback" not in done.stdout

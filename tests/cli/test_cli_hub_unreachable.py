"""An unreachable hub is a network error: exit 1 and one line that says so, at once, with no
retry lines first (the real console script and huggingface_hub, a loopback port nobody listens on)."""

import subprocess
import sys
from pathlib import Path

from engineforge.processes.serving import free_port

CONSOLE_SCRIPT = Path(sys.executable).with_name("engineforge")


def test_plan_of_a_hub_model_with_the_hub_unreachable(tmp_path):
    recipe = tmp_path / "hub.yaml"
    recipe.write_text("name: hub\nmodel:\n  source: hf://acme/nothing\nruntime: transformers\n")
    endpoint = f"http://127.0.0.1:{free_port()}"
    env = {"PATH": "/usr/bin:/bin", "HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run([str(CONSOLE_SCRIPT), "plan", str(recipe)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        f"error: network: cannot reach the Hugging Face hub at {endpoint} (Connection refused); "
        "check the connection, or HF_ENDPOINT for a mirror"
    ]

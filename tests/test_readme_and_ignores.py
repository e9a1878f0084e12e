"""The README points only inside the repository, and what runs leave in the working directory is ignored."""

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_readme_names_no_file_outside_the_repository():
    text = (REPO / "README.md").read_text()
    assert re.findall(r"\.\./[\w./-]+", text) == []
    for path in re.findall(r"`((?:docs|scripts|recipes|tests|bench|docker)/[\w./-]+\.\w+)`", text):
        assert (REPO / path).exists(), f"README names {path}, which is not in the repository"


def test_run_outputs_are_ignored(tmp_path):
    outputs = ["mlflow.db", "mlflow.db.lock", "mlflow.db-journal", "mlartifacts/x", ".engineforge/store/x"]
    done = subprocess.run(["git", "check-ignore", "--no-index", *outputs], cwd=REPO, capture_output=True, text=True)
    assert done.stdout.split() == outputs

"""How long `engineforge validate` takes on the largest hostile recipes the loader lets in.

Each case is about 1 MiB (the loader's cap): the time is read + scan + compose + checks + schema,
what `validate` spends before it prints. Prints one line per case: seconds and the first problem.
Usage: .venv/bin/python bench/recipe_parse.py
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from engineforge.recipe_checks import check_recipes

MIB = 1 << 20
BASE = "name: bench\nmodel:\n  source: synthetic:tiny\n"


def cases() -> dict[str, str]:
    keys = "".join(f"k{i}: {i}\n" for i in range(9_990))  # 19,980 scalars: just under the 20,000 cap
    prompt = "x" * (MIB - 200)
    return {
        "9,990 unknown keys": BASE + keys,
        "40,000 unknown keys": BASE + keys * 4,
        "one 1 MiB prompt": BASE + f"validate:\n  prompts: ['{prompt}']\n",
        "1 MiB flow list": BASE + "a: [" + "1, " * ((MIB - 100) // 3) + "]\n",
        "1 MiB nesting": BASE + "a: " + "[" * ((MIB - 100) // 2) + "]" * ((MIB - 100) // 2) + "\n",
        "1 MiB of comment": BASE + "# " + "x" * (MIB - 100) + "\n",
        "2 MiB (over the cap)": BASE + "# " + "x" * (2 * MIB) + "\n",
    }


def main() -> None:
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as directory:
        for name, text in cases().items():
            path = Path(directory) / "recipe.yaml"
            path.write_text(text)
            started = time.perf_counter()
            _, problems = check_recipes([path])
            elapsed = time.perf_counter() - started
            first = problems[0].split(": ", 1)[1] if problems else "ok"
            print(f"{name:<22} {len(text) / MIB:5.2f} MiB {elapsed:6.2f} s  {first[:90]}")


if __name__ == "__main__":
    main()

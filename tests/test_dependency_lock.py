"""requirements.lock agrees with pyproject.toml: every requirement (every extra) is pinned in it, with
hashes, at a version the requirement admits. Fails in CI when one is edited without the other
(`bash scripts/lock.sh` re-resolves)."""

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^ \\]+)")


def locked() -> tuple[dict[str, str], str]:
    text = (ROOT / "requirements.lock").read_text()
    pins = {canonicalize_name(m[1]): m[2] for m in map(PIN.match, text.splitlines()) if m}
    torch = re.search(r"^# torch==(\S+)", text, re.M)
    assert torch, "requirements.lock names no `# torch==VERSION` line"
    return pins, torch[1]


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + [line for extra in project["optional-dependencies"].values() for line in extra]
    return [Requirement(line) for line in lines]


def test_every_declared_requirement_is_pinned_in_the_lock_at_an_admitted_version():
    pins, torch = locked()
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        version = torch if name == "torch" else pins.get(name)
        assert version is not None, f"{requirement} is not in requirements.lock: run bash scripts/lock.sh"
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements.lock pins {name}=={version}, outside pyproject's {requirement}: run bash scripts/lock.sh"
        )


def test_every_pin_carries_a_hash_and_no_cuda_build_of_torch_entered():
    blocks = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / "requirements.lock").read_text())
    pinned = [block for block in blocks if PIN.match(block)]
    assert len(pinned) == len(locked()[0])
    assert [block.split()[0] for block in pinned if "--hash=sha256:" not in block] == []
    cuda = [name for name in locked()[0] if name.startswith(("nvidia-cu", "nvidia-nccl")) or name == "triton"]
    assert cuda == [], "CUDA packages entered the lock: scripts/lock.sh resolves torch's CPU build"

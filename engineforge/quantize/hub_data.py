"""Calibration data from a hub dataset, `hf://datasets/ORG/NAME`: the files of one split, fetched
through huggingface_hub into its cache (so a rerun, or HF_HUB_OFFLINE=1, reads them from there).

A split's files follow the hub's naming convention (huggingface.co/docs/hub/datasets-file-names-and-splits):
SPLIT.EXT, SPLIT-00000-of-00001.EXT (also SPLIT_..., SPLIT.…), or any file under a SPLIT/ directory,
at the top or one directory down (data/train-....parquet).
"""

from __future__ import annotations

import re
from pathlib import Path

from engineforge.sources import hub
from engineforge.errors import UserError

HUB_PREFIX = "hf://datasets/"
REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")
SUFFIXES = (".jsonl", ".json", ".parquet", ".txt")  # what calibration.read_texts reads


def is_hub_dataset(dataset: str) -> bool:
    return dataset.startswith(HUB_PREFIX)


def split_files(dataset: str, split: str) -> list[Path]:
    """The split's data files in the local cache, downloaded first when missing, in name order."""
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError

    repo = dataset.removeprefix(HUB_PREFIX)
    field = f"quantize.calibration.dataset {dataset}"
    if not REPO.fullmatch(repo):
        raise UserError(f"{field}: expected hf://datasets/ORG/NAME")
    patterns = [f"{prefix}{split}{rest}" for prefix in ("", "*/") for rest in ("[-_.]*", "/*")]
    try:
        root = hub.download_snapshot(repo, repo_type="dataset", allow_patterns=patterns)
    except GatedRepoError:
        raise UserError(f"{field}: the dataset is gated; accept its terms on the hub and set HF_TOKEN") from None
    except RepositoryNotFoundError:
        raise UserError(f"{field}: no such dataset on the hub (or it is private: set HF_TOKEN)") from None
    except LocalEntryNotFoundError:
        raise UserError(f"{field}: not in the Hugging Face cache and the hub cannot be asked (HF_HUB_OFFLINE or no "
                        "connection); run once with network access") from None
    files = sorted(path for path in root.rglob("*") if path.is_file() and path.suffix in SUFFIXES)
    if not files:
        raise UserError(f"{field}: no {', '.join(SUFFIXES)} files for split {split!r}; set quantize.calibration.split "
                        "to one of the dataset's splits")
    return files

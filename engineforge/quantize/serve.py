"""`transformers serve` for a fake-quantized model: `python -m engineforge.quantize.serve DIR ARGS...`.

ModelOpt's Hugging Face checkpointing patches `from_pretrained` so that it restores the
quantizers saved in `modelopt_state.pth`; enabled before the server loads the model, the server
answers with the quantized model rather than the unquantized weights stored beside the state.
"""

from __future__ import annotations

import sys

MODELOPT_STATE = "modelopt_state.pth"  # what save_pretrained writes with HF checkpointing enabled


def argv(python: str, model_dir: str) -> list[str]:
    """The start of the server command line (the `transformers serve MODEL` equivalent)."""
    return [python, "-m", "engineforge.quantize.serve", model_dir]


def main(args: list[str]) -> int:
    import modelopt.torch.opt as mto
    from transformers.cli.transformers import main as transformers_main

    mto.enable_huggingface_checkpointing()
    sys.argv = ["transformers", "serve", *args]
    return transformers_main() or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

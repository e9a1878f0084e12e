"""`transformers serve` for a fake-quantized model: `python -m engineforge.quantize.serve DIR ARGS...`.

ModelOpt's Hugging Face checkpointing patches `from_pretrained` so that it restores the
quantizers saved in `modelopt_state.pth`; enabled before the server loads the model, the server
answers with the quantized model rather than the unquantized weights stored beside the state.
"""

from __future__ import annotations

import sys

# The `transformers serve` equivalent; "python" is resolved beside the running interpreter (engineforge.serving).
SERVER_ARGV = ["python", "-m", "engineforge.quantize.serve"]


def main(args: list[str]) -> int:
    import modelopt.torch.opt as mto
    from transformers.cli.transformers import main as transformers_main

    mto.enable_huggingface_checkpointing()
    sys.argv = ["transformers", "serve", *args]
    return transformers_main() or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

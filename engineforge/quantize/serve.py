"""`transformers serve` for a fake-quantized model: `python -c WRAPPER DIR ARGS...`.

ModelOpt's Hugging Face checkpointing patches `from_pretrained` so that it restores the
quantizers saved in `modelopt_state.pth`; enabled before the server loads the model, the server
answers with the quantized model rather than the unquantized weights stored beside the state.
The wrapper is inline code, not an engineforge module, so a serving image needs only
transformers and ModelOpt (the runtime's image requirements), not engineforge.
"""

from __future__ import annotations

WRAPPER = (
    "import sys; import modelopt.torch.opt as mto; mto.enable_huggingface_checkpointing(); "
    "from transformers.cli.transformers import main; sys.argv = ['transformers', 'serve', *sys.argv[1:]]; "
    "sys.exit(main() or 0)"
)
# The `transformers serve` equivalent; "python" is resolved beside the running interpreter (engineforge.serving).
SERVER_ARGV = ["python", "-c", WRAPPER]

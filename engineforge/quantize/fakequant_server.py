"""`transformers serve` for a ModelOpt fake-quantized checkpoint: `python fakequant_server.py DIR ARGS...`.

A standalone script (transformers and ModelOpt only, no engineforge), copied beside the model it serves
(engineforge/quantize/serve.py), so a serving image runs it as it is.

ModelOpt's Hugging Face checkpointing patches `from_pretrained` so that it restores the quantizers saved
in `modelopt_state.pth`; without it the server answers with the unquantized weights stored beside them.
The patch is made when this file is imported, not under `__main__`: transformers serve (5.25) loads the
model in a process it spawns, and a spawned process imports the parent's main file again (as
`__mp_main__`), which is how the patch reaches the process that loads the model.
"""

import sys

import modelopt.torch.opt as mto

mto.enable_huggingface_checkpointing()

if __name__ == "__main__":
    from transformers.cli.transformers import main

    sys.argv = ["transformers", "serve", *sys.argv[1:]]
    sys.exit(main() or 0)

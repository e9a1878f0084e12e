"""Loading the fake-quantized checkpoint the quantize stage saves (`fakequant/`) as ModelOpt saved it.

ModelOpt's Hugging Face checkpointing keeps the weights unquantized and writes the calibrated
quantizers beside them (`modelopt_state.pth`); `from_pretrained` restores them only in a process
where `enable_huggingface_checkpointing()` ran, a process-wide patch. Anywhere else the same
directory loads as the unquantized model, with no warning, so whoever loads it says so first.
"""

from __future__ import annotations

from pathlib import Path

MODELOPT_STATE = "modelopt_state.pth"  # modelopt/torch/opt/plugins/huggingface.py _MODELOPT_STATE_SAVE_NAME


def restore_quantizers_on_load(model_dir: str | Path) -> bool:
    """When `model_dir` holds ModelOpt's state, make this process's `from_pretrained` restore its
    quantizers (the model then computes as quantized); return whether it does."""
    if not (Path(model_dir) / MODELOPT_STATE).is_file():
        return False
    import modelopt.torch.opt as mto

    mto.enable_huggingface_checkpointing()
    return True

"""Does a TensorRT-LLM checkpoint hold, and compute, its Hugging Face source? (`verify_checkpoint`)"""

from engineforge.verify.single import VerifyReport, verify_checkpoint

__all__ = ["VerifyReport", "verify_checkpoint"]

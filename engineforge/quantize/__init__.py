"""Post-training quantization through NVIDIA Model Optimizer (ModelOpt): calibrate, fake-quantize,
measure what it cost against the unquantized source, export a unified Hugging Face checkpoint."""

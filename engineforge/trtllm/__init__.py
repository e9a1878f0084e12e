"""TensorRT-LLM facts that do not depend on a runtime: which versions a recipe may target and what
each one changes (versions), the LLM API options a recipe emits (options), and the definitions
those options are checked against before any work (definitions); NVIDIA's curated and database
serve configs read as sweep starting points (curated).

Nothing here imports `tensorrt_llm`; the facts come from NVIDIA/TensorRT-LLM's source, cited where used.
"""

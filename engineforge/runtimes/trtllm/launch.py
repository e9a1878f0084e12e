"""How a TensorRT-LLM server process is started: one command line, its environment, and the
multi-node wrapper TensorRT-LLM documents.

- One node (world size <= parallel.gpus_per_node): plain `trtllm-serve ...`; the LLM API spawns its
  own MPI workers, and TensorRT-LLM says not to add an `mpirun` prefix for single-node multi-GPU
  (docs/source/llm-api/index.md, "Tips and Troubleshooting").
- Several nodes: every rank runs `trtllm-llmapi-launch trtllm-serve ...` inside one MPI world
  (docs/source/commands/trtllm-serve/trtllm-serve.rst, "Multi-node Serving with Slurm";
  tensorrt_llm/llmapi/trtllm-llmapi-launch reads the rank from OMPI_COMM_WORLD_RANK or SLURM_PROCID).
  We start that world with `mpirun -n WORLD_SIZE`; the hosts come from the MPI environment
  (a Slurm allocation or an Open MPI hostfile), which is the cluster's, not the recipe's.
"""

from __future__ import annotations

from engineforge.recipe.parallel_layout import ParallelLayout

MPIRUN = "mpirun"
LLMAPI_LAUNCH = "trtllm-llmapi-launch"


def multi_node(layout: ParallelLayout, gpus_per_node: int) -> bool:
    return layout.world_size > gpus_per_node


def launched(argv: list[str], layout: ParallelLayout, gpus_per_node: int) -> list[str]:
    """`argv` as TensorRT-LLM documents starting it for this layout."""
    if not multi_node(layout, gpus_per_node):
        return argv
    return [MPIRUN, "-n", str(layout.world_size), LLMAPI_LAUNCH, *argv]


def launcher_commands(layout: ParallelLayout, gpus_per_node: int) -> list[str]:
    """The commands a worker needs on PATH to start this layout (besides trtllm-serve)."""
    return [MPIRUN, LLMAPI_LAUNCH] if multi_node(layout, gpus_per_node) else []

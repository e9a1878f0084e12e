"""TensorRT-LLM command lines and files, one command per module (as `tensorrt_llm/commands/`).

Everything here is built from the contract in ../shared/trtllm-facts.md and TensorRT-LLM's source;
nothing here imports `tensorrt_llm` (it needs a CUDA driver, and it is absent on most machines).

- availability: is TensorRT-LLM on this worker (find_spec + which), and which version
(the LLM API options file itself: engineforge.trtllm.options)
- serve: `trtllm-serve` argv and its multi-GPU / multi-node launcher
- build: `trtllm-build` argv, running it with a captured log, checking the engine directory
- bench: `trtllm-bench throughput|latency` argv, its dataset and its `--report_json`
- disagg: disaggregated serving (context/generation workers, `disagg_config.yaml`)
- compose: compose.yaml for a disaggregated deployment of a built image
- files: stable YAML text for everything written
"""

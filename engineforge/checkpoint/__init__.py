"""Streamed sharding of a Hugging Face checkpoint into a TensorRT-LLM checkpoint (`shard_checkpoint`).
The format contract is trtllm-facts.md; verification of the result is engineforge/verify/."""

from engineforge.checkpoint.shard import ShardReport, shard_checkpoint

__all__ = ["ShardReport", "shard_checkpoint"]

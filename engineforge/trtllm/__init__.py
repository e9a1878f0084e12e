"""TensorRT-LLM formats: streamed checkpoint sharding (`shard_checkpoint`) and its verification
(`verify_checkpoint`). The contract is ../shared/trtllm-facts.md."""

from engineforge.trtllm.checkpoint import ShardReport, shard_checkpoint
from engineforge.trtllm.verify import VerifyReport, verify_checkpoint

__all__ = ["ShardReport", "VerifyReport", "shard_checkpoint", "verify_checkpoint"]

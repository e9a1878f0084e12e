"""What each pipeline stage does, as plain functions over typed values (tasks/ wraps them)."""

STAGES = ("download", "shard", "build", "validate", "package", "register")

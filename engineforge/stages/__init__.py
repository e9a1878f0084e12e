"""What each pipeline stage does, as plain functions over typed values (tasks/ wraps them)."""

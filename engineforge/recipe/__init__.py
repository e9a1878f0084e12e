"""The recipe: its schema, reading its YAML file safely, and its `trtllm:` section."""

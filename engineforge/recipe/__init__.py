"""The recipe: its schema, reading its YAML file safely, its `trtllm:` section and its resolved parallel layout."""

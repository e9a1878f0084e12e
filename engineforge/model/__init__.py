"""A model's files on this host: the directories they may live in, and the shape its config.json declares."""

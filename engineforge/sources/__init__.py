"""Where a recipe's model comes from: the Hugging Face hub, a local directory or a synthetic spec, and its revision."""

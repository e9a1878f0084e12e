"""MLflow: every tag name once, and the runs, metrics and registry written through one client."""

"""The pipeline's stages, each one typed value (`Stage`, engineforge/stages/stage.py) in its own module.

Each module holds what its stage is: its content key, its work, what it records in MLflow and how
it judges its result, its dry-run plan, the GPUs it uses and when it does not apply. `pipeline.py`
holds `STAGES`, their pipeline order; `tasks/stage.py` runs any of them as a Prefect task, and
`flows/model_to_deployment.py` calls them in that order; `progress.py` carries their progress events
to whoever shows them (the CLI's live table, the Prefect progress artifacts).

This file imports nothing, so that importing one stage module, or the progress events, does not
import every stage and runtime.
"""

"""Error types the CLI knows how to show without a traceback."""


class UserError(Exception):
    """Bad input from the user (recipe, flag, path): one line, exit code 2."""

    exit_code = 2


class StageFailed(Exception):
    """A pipeline stage could not finish: one line naming the stage and cause, exit code 1."""

    exit_code = 1

    def __init__(self, stage: str, cause: str):
        super().__init__(f"stage {stage} failed: {cause}")
        self.stage = stage
        self.cause = cause

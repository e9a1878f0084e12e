"""Error types the CLI knows how to show without a traceback."""


class UserError(Exception):
    """Bad input from the user (recipe, flag, path): one line, exit code 2."""

    exit_code = 2


class NetworkError(Exception):
    """A service did not answer (the Hugging Face hub, its mirror): not bad input; one line, exit code 1."""

    exit_code = 1


class StageFailed(Exception):
    """A pipeline stage could not finish: one line naming the stage and cause, exit code 1."""

    exit_code = 1

    def __init__(self, stage: str, cause: str, user_error: bool = False):
        super().__init__(f"stage {stage} failed: {cause}")
        self.stage = stage
        self.cause = cause
        self.user_error = user_error  # bad input: retrying will not help

    def __reduce__(self):  # keep the fields when Prefect pickles the exception into a state
        return (type(self), (self.stage, self.cause, self.user_error))

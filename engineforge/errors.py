"""Error types the CLI knows how to show without a traceback: one base, `EngineForgeError`, carrying
the exit code and whether trying again can help (Prefect's retry conditions and `retries.can_pass` ask it)."""


class EngineForgeError(Exception):
    """A failure shown as its message alone (one line), exit code `exit_code`."""

    exit_code = 1
    retryable = True  # whether the same attempt, made again, can succeed


class UserError(EngineForgeError):
    """Bad input from the user (recipe, flag, path): one line, exit code 2; retrying will not help."""

    exit_code = 2
    retryable = False


class NetworkError(EngineForgeError):
    """A service did not answer (the Hugging Face hub, its mirror): not bad input; one line, exit code 1."""


class StageFailed(EngineForgeError):
    """A pipeline stage could not finish: one line naming the stage and cause, exit code 1."""

    def __init__(self, stage: str, cause: str, user_error: bool = False):
        super().__init__(f"stage {stage} failed: {cause}")
        self.stage = stage
        self.cause = cause
        self.retryable = not user_error  # bad input (or a full disk, a 4xx): retrying will not help

    def __reduce__(self):  # keep the fields when Prefect pickles the exception into a state
        return (type(self), (self.stage, self.cause, not self.retryable))


class RunFailed(StageFailed):
    """A run that ended on a failed stage, with the run's summary (the table the CLI prints, the
    MLflow run's record) as a field, so the caller reports the whole outcome, not only the cause."""

    def __init__(self, stage: str, cause: str, summary: dict, user_error: bool = False):
        super().__init__(stage, cause, user_error)
        self.summary = summary

    @classmethod
    def of(cls, failure: StageFailed, summary: dict) -> "RunFailed":
        return cls(failure.stage, failure.cause, summary, user_error=not failure.retryable)

    def __reduce__(self):
        return (type(self), (self.stage, self.cause, self.summary, not self.retryable))

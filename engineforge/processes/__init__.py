"""The processes engineforge starts and owns: who owns a record or a process (`owner`), their environment
without secrets, the lifeline that stops them with us, model servers (start, health, stop) and the
background Prefect and MLflow servers."""

"""The processes engineforge starts: their environment without secrets, the lifeline that stops them with us,
model servers (start, health, stop) and the background Prefect and MLflow servers."""

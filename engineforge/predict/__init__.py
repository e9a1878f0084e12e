"""Predictions before measuring: NVIDIA AIConfigurator's performance model (optional extra `engineforge[predict]`)."""

from engineforge.predict.aiconfigurator import (BACKEND, BACKEND_VERSION, PREDICTED, NoPrediction, Prediction, estimate_args,
                                               predict)

__all__ = ["BACKEND", "BACKEND_VERSION", "PREDICTED", "NoPrediction", "Prediction", "estimate_args", "predict"]

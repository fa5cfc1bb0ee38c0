"""Evaluation of frozen encoders: kNN, linear probe, forecasting and time-series
classification probes, (later) invariance measurement."""

from invlab.evaluation.features import extract_features
from invlab.evaluation.knn import knn_accuracy, knn_predict
from invlab.evaluation.linear_probe import ProbeResult, linear_probe

__all__ = ["extract_features", "knn_accuracy", "knn_predict", "ProbeResult", "linear_probe"]

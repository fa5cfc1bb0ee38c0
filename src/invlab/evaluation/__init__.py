"""Evaluation of frozen encoders: kNN, linear probe, invariance and equivariance measurement,
forecasting and time-series classification probes."""

from invlab.evaluation.equivariance import (
    EquivarianceScore,
    ParamRecovery,
    equivariance_profile,
    equivariance_score,
)
from invlab.evaluation.features import extract_features
from invlab.evaluation.invariance import InvarianceScore, invariance_profile, invariance_score
from invlab.evaluation.knn import knn_accuracy, knn_predict, knn_search
from invlab.evaluation.layers import LayerTaps, resolve_layers
from invlab.evaluation.linear_probe import ProbeResult, linear_probe
from invlab.evaluation.paired_views import PairedViews
from invlab.evaluation.video import ClipFeatures, encode_clips, finetune, video_probe

__all__ = [
    "extract_features", "knn_accuracy", "knn_predict", "knn_search", "ProbeResult", "linear_probe",
    "InvarianceScore", "invariance_score", "invariance_profile", "EquivarianceScore", "ParamRecovery",
    "equivariance_score", "equivariance_profile", "LayerTaps", "resolve_layers", "PairedViews",
    "ClipFeatures", "encode_clips", "finetune", "video_probe",
]

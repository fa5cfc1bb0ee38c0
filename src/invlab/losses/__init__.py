"""Losses as pure functions of tensors (shapes in each docstring) plus thin modules."""

from invlab.losses.barlow_twins import BarlowTwinsLoss, barlow_twins
from invlab.losses.contrastive import InfoNCELoss, NTXentLoss, info_nce, nt_xent
from invlab.losses.equivariance import (
    EquivarianceLoss,
    circular_loss,
    discrete_loss,
    regression_loss,
)
from invlab.losses.hdc import StageWeights, multi_stage_nt_xent
from invlab.losses.precision import float32_loss, upcast
from invlab.losses.simsiam import SimSiamLoss, negative_cosine, simsiam_loss
from invlab.losses.timedrl import instance_contrastive_loss, timestamp_predictive_loss

__all__ = [
    "BarlowTwinsLoss", "barlow_twins", "NTXentLoss", "nt_xent", "SimSiamLoss",
    "negative_cosine", "simsiam_loss", "instance_contrastive_loss", "timestamp_predictive_loss",
    "InfoNCELoss", "info_nce", "EquivarianceLoss", "circular_loss", "discrete_loss", "regression_loss",
    "StageWeights", "multi_stage_nt_xent", "float32_loss", "upcast",
]
from invlab.losses.invariance_propagation import (  # noqa: E402
    InvPLossOutput,
    hard_positives,
    invariance_propagation_loss,
    propagate,
)
from invlab.losses.memory_bank import MemoryBank, bank_similarities, bank_topk  # noqa: E402
from invlab.losses.transitive import (  # noqa: E402
    inter_instance_edges,
    intra_instance_edges,
    select_negatives,
    transitive_pairs,
    triplet_ranking_loss,
)

__all__ += [
    "MemoryBank", "bank_similarities", "bank_topk", "InvPLossOutput", "hard_positives", "invariance_propagation_loss", "propagate", "inter_instance_edges",
    "intra_instance_edges", "select_negatives", "transitive_pairs", "triplet_ranking_loss",
]

"""The image modality: recipe sections (:mod:`.recipe`), encoder building and loading
(:mod:`.encoder`), run set-up (:mod:`.setup`) and the kNN / linear / invariance /
equivariance protocols (:mod:`.protocols`). The methods themselves (SimCLR, SimSiam,
Barlow Twins, supervised, E-SSL, ...) and their ``params`` live in :mod:`invlab.methods`.
"""

from invlab.methods.barlow_twins import BarlowTwinsParams
from invlab.methods.essl import EBarlowTwinsParams, ESimCLRParams, ESimSiamParams
from invlab.methods.simclr import SimCLRParams
from invlab.methods.simsiam import SimSiamParams
from invlab.methods.supervised import SupervisedParams
from invlab.runs.image.encoder import (
    build_encoder,
    encoder_from_checkpoint,
    encoder_from_state,
    load_image_encoder,
)
from invlab.runs.image.protocols import (
    equivariance_protocol,
    invariance_protocol,
    knn_protocol,
    linear_protocol,
    measurement_data,
)
from invlab.runs.image.recipe import (
    ImageAugment,
    ImageData,
    ImageModel,
    ImageMonitor,
    build_pipelines,
    load_data,
    load_split,
    normalisation,
    validate,
)
from invlab.runs.image.setup import build_method, setup
from invlab.runs.modality import Modality

__all__ = [
    "MODALITY", "ImageData", "ImageModel", "ImageAugment", "ImageMonitor", "validate", "load_data", "load_split",
    "normalisation", "build_encoder", "encoder_from_state", "encoder_from_checkpoint", "load_image_encoder",
    "build_pipelines", "build_method", "setup", "knn_protocol", "linear_protocol", "measurement_data",
    "invariance_protocol", "equivariance_protocol",
    # the methods' params, re-exported for code written against the old runs.image
    "SimCLRParams", "SimSiamParams", "BarlowTwinsParams", "SupervisedParams", "ESimCLRParams", "ESimSiamParams",
    "EBarlowTwinsParams",
]

MODALITY = Modality(
    name="image", data=ImageData, model=ImageModel, augment=ImageAugment, monitor=ImageMonitor,
    setup=setup, validate=validate,
    protocols={"knn": knn_protocol, "linear": linear_protocol, "invariance": invariance_protocol,
               "equivariance": equivariance_protocol},
    encoder_from_checkpoint=encoder_from_checkpoint,
)

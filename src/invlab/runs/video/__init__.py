"""The video modality: recipe sections (:mod:`.recipe`: controlled videos, UCF101,
HMDB51 or class folders; clip windows; temporal + spatial view pipelines; 3D backbones),
encoder building and loading (:mod:`.encoder`), run set-up (:mod:`.setup`) and the
``linear`` (clip- and video-level), ``knn`` and ``invariance`` protocols
(:mod:`.protocols`). The methods (HDC, clip SimCLR) and their ``params`` live in
:mod:`invlab.methods.hdc`.
"""

from invlab.runs.modality import Modality
from invlab.runs.video.encoder import build_encoder, encoder_from_checkpoint, load_video_encoder
from invlab.runs.video.protocols import (
    centred_test_clips,
    finetune_protocol,
    invariance_protocol,
    knn_protocol,
    linear_protocol,
)
from invlab.runs.video.recipe import (
    VideoAugment,
    VideoData,
    VideoModel,
    VideoMonitor,
    build_pairs,
    load_data,
    load_videos,
    normalisation,
    validate,
    view_frames,
)
from invlab.runs.video.setup import build_method, setup

__all__ = [
    "MODALITY", "VideoData", "VideoModel", "VideoAugment", "VideoMonitor", "validate", "build_pairs", "load_videos",
    "load_data", "normalisation", "view_frames", "build_encoder", "encoder_from_checkpoint", "load_video_encoder",
    "build_method", "setup", "linear_protocol", "finetune_protocol", "knn_protocol", "invariance_protocol", "centred_test_clips",
]

MODALITY = Modality(
    name="video", data=VideoData, model=VideoModel, augment=VideoAugment, monitor=VideoMonitor,
    setup=setup, validate=validate,
    protocols={"linear": linear_protocol, "finetune": finetune_protocol, "knn": knn_protocol,
               "invariance": invariance_protocol},
    encoder_from_checkpoint=encoder_from_checkpoint,
)

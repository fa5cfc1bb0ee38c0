import numpy as np
import pytest
import torch
from torch import nn

from invlab.data.video import DecodedVideos
from invlab.evaluation.video import ClipFeatures, encode_clips, video_probe


class MeanColour(nn.Module):
    """A fixed 'encoder': the mean of each channel over each half of the clip."""

    def forward(self, x):
        t = x.shape[2]
        return torch.cat([x[:, :, : t // 2].mean((2, 3, 4)), x[:, :, t // 2:].mean((2, 3, 4))], 1)


def test_encode_clips_rows_labels_and_features():
    frames = np.zeros((3 * 6, 3, 4, 4), np.uint8)
    for v in range(3):
        frames[v * 6:(v + 1) * 6] = np.arange(6).reshape(6, 1, 1, 1) * 10 + v
    d = DecodedVideos(frames, [0, 6, 12, 18], [0, 1, 0], ["a", "b"])
    enc = MeanColour()
    out = encode_clips(enc, d, clip_len=2, num_clips=3, batch_size=4)
    assert out.video.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2] and out.labels.tolist() == [0] * 3 + [1] * 3 + [0] * 3
    f = out.stage("pool")
    assert f.shape == (9, 6)
    # video 1, clip 1: frames 2 and 3 (uniform starts 0, 2, 4)
    assert f[4, 0] == pytest.approx((20 + 1) / 255) and f[4, 3] == pytest.approx((30 + 1) / 255)
    relabelled = encode_clips(enc, d, 2, labels=np.array([5, 6, 7]))
    assert relabelled.labels.tolist() == [5, 6, 7]
    with pytest.raises(KeyError):
        out.stage("res3")


def _features(n_videos, clips, noise, seed):
    rng = np.random.default_rng(seed)
    y = np.arange(n_videos) % 3
    centres = np.eye(3) * 3
    video = np.repeat(np.arange(n_videos), clips)
    x = centres[y[video]] + noise * rng.standard_normal((len(video), 3))
    return ClipFeatures({"pool": x}, video, y[video])


def test_video_level_averaging_beats_single_clips_on_noisy_clips():
    train = _features(60, 1, 0.5, 0)
    test = _features(60, 9, 4.0, 1)
    r = video_probe(train, test, grid=(0.1, 1.0))
    assert 0.3 < r.clip_top1 < 0.9
    assert r.video_top1 > r.clip_top1 + 0.1  # averaging nine noisy clips per video helps
    assert set(r.cv_accuracy) == {0.1, 1.0}
    clean = video_probe(_features(60, 1, 0.1, 2), _features(30, 2, 0.1, 3), grid=(1.0,))
    assert clean.clip_top1 == 1.0 and clean.video_top1 == 1.0


def test_invariance_of_a_video_encoder_per_stage():
    from invlab.evaluation import invariance_score
    from invlab.nn import Encoder, r3d_18
    from invlab.transforms.video import FrameShuffle

    torch.manual_seed(0)
    enc = Encoder(r3d_18(width=4, stem_stride=1), [0.5] * 3, [0.25] * 3)
    clips = torch.rand(12, 3, 4, 8, 8)
    s = invariance_score(enc, clips, "reverse", layers=["res3", "output"], pool="mean", bootstrap=50)
    assert set(s) == {"res3", "output"} and all(0 <= v.score < 2 for v in s.values())

    class Pooled(nn.Module):  # averages over time: exactly invariant to frame order
        def forward(self, x):
            return x.mean(2).flatten(1)

    assert invariance_score(Pooled(), clips, FrameShuffle(p=1.0), bootstrap=50)["output"].score < 1e-6
    spatial = invariance_score(Pooled(), clips, {"name": "rotate", "degrees": [90, 90]}, bootstrap=50)["output"]
    assert spatial.score < 1e-6  # both twins get the same 90-degree rotation
    moved = invariance_score(Pooled(), clips, {"name": "rotate", "degrees": [0, 180]}, bootstrap=50)["output"]
    assert moved.score > 0.1


@pytest.mark.slow
def test_finetune_learns_an_easy_task_and_leaves_the_encoder_untouched():
    from invlab.data.video import ControlledVideos
    from invlab.evaluation.video import finetune
    from invlab.nn import Encoder, r3d_18

    # brighten vs darken: an easy motion task for a tiny network
    kw = dict(num_frames=6, image_size=16, motions=["brighten", "darken"], num_classes=2)
    train = DecodedVideos.from_array(ControlledVideos(48, **kw).to_video_array("motion"))
    test = DecodedVideos.from_array(ControlledVideos(24, split="test", **kw).to_video_array("motion"))
    torch.manual_seed(0)
    enc = Encoder(r3d_18(width=4, stem_stride=1), [0.5] * 3, [0.25] * 3)
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    r = finetune(enc, train, test, clip_len=4, num_clips=2, epochs=6, lr=0.05, batch_size=8)
    assert r.history[-1] < r.history[0]
    assert r.video_top1 >= 0.75 and 0 <= r.clip_top1 <= 1
    assert all(torch.equal(before[k], v) for k, v in enc.state_dict().items())  # a copy was trained
    again = finetune(enc, train, test, clip_len=4, num_clips=2, epochs=6, lr=0.05, batch_size=8)
    assert again.history == r.history  # seeded

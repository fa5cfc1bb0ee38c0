"""The demo's findings are computed from its numbers: fed numbers pointing each way, the
sentences change with them."""

from __future__ import annotations

from invlab.cli.demo import DEMO_TRANSFORMS, findings, trained_with
from invlab.runs.config import load_recipe


def _row(method, scores, probe, half=0.02):
    inv = {t: {"score": scores.get(t, 0.5), "ci": [scores.get(t, 0.5) - half, scores.get(t, 0.5) + half]}
           for t in DEMO_TRANSFORMS}
    return {"method": method, "invariance": inv, "linear_top1": probe}


TRAINED = {"supervised": ["rotate", "scale"], "simclr": ["hue", "grayscale"]}


def test_findings_when_the_expected_picture_holds():
    rows = [_row("random init", {"rotate": 0.3, "scale": 0.8, "hue": 0.25, "grayscale": 0.22}, 0.42),
            _row("supervised", {"rotate": 0.15, "scale": 0.4, "hue": 0.9, "grayscale": 0.6}, 0.99),
            _row("simclr", {"rotate": 0.5, "scale": 0.7, "hue": 0.05, "grayscale": 0.04}, 0.60)]
    text = findings(rows, TRAINED, 500)
    assert text[0] == ("Each method is more invariant than random init to every transformation it trained with "
                       "(4 of 4 comparisons, all intervals separated).")
    assert text[1].startswith("**supervised** trained with rotate, scale: its score is below random init's with "
                              "separated intervals for 2 of 2 of them.")
    assert "rotate: supervised 0.15 [0.13, 0.17] vs random init 0.30 [0.28, 0.32]: lower (more invariant) by 0.15" in text[1]
    assert "hue: simclr 0.05 [0.03, 0.07], 0.20 below random init 0.25 [0.23, 0.27] (separated)" in text[3]
    assert "rotate: supervised 0.15" in text[3]
    assert "simclr beats random init (simclr 0.600 [" in text[4] and "higher by 0.180" in text[4]


def test_findings_when_the_numbers_point_the_other_way():
    rows = [_row("random init", {"rotate": 0.13, "scale": 0.1, "hue": 0.18, "grayscale": 0.1}, 0.422),
            _row("supervised", {"rotate": 0.16, "scale": 0.1, "hue": 0.9, "grayscale": 0.6}, 0.99),
            _row("simclr", {"rotate": 0.5, "scale": 0.7, "hue": 0.35, "grayscale": 0.05}, 0.356)]
    text = findings(rows, TRAINED, 500)
    assert text[0] == ("1 of 4 (method, transformation it trained with) pairs are more invariant than random init "
                       "with separated intervals; not: supervised on rotate, supervised on scale, simclr on hue.")
    assert "for 0 of 2 of them" in text[1] and "higher (less invariant) by 0.03" in text[1]
    assert "scale: supervised 0.10 [0.08, 0.12] vs random init 0.10 [0.08, 0.12]: equal to 2 decimals" in text[1]
    assert "for 1 of 2 of them" in text[2]
    assert "rotate: random init 0.13 [0.11, 0.15], 0.03 below supervised" in text[3]
    assert "simclr is not clearly different from random init" in text[4] and "lower by 0.066, but the intervals" in text[4]
    rows[2]["linear_top1"] = 0.30
    assert "simclr is below random init (simclr 0.300" in findings(rows, TRAINED, 500)[4]
    assert "Each method is more invariant" not in " ".join(text)


def test_what_each_demo_method_trained_with_is_read_from_its_recipe():
    sup = load_recipe("supervised-controlled", ["data.controlled.transforms=[rotate, scale]"])
    ssl = load_recipe("simclr-controlled", [])
    assert trained_with(sup) == ["rotate", "scale"]
    assert trained_with(ssl) == ["scale", "translate", "hflip", "hue", "brightness", "grayscale"]

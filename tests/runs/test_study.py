"""Study recipes: the E-SSL invariance-vs-equivariance study resolves into valid pretraining
configs (base, base + T as augmentation, base + predicting T), list-append overrides, and a
tiny real run of some of its cells."""

from __future__ import annotations

import json

import pytest

from invlab.errors import ConfigError
from invlab.runs.study import load_study, run_study

STUDIED = ["hflip", "vflip", "rot90", "grayscale", "invert", "blur", "jigsaw"]


def _names(pipeline):
    return [step["name"] for step in pipeline]


@pytest.mark.parametrize("pretrain, method, weight", [
    ("e-simclr-controlled", "e_simclr", 0.4), ("e-simsiam-controlled", "e_simsiam", 0.4),
    ("e-barlow-controlled", "e_barlow_twins", 8.0),
])
def test_essl_study_sources_resolve_into_valid_configs(pretrain, method, weight):
    plan = load_study("essl-controlled", [f"pretrain={pretrain}"])
    assert list(plan.recipe.sources) == ["base"] + [f"{t}-{kind}" for t in STUDIED
                                                    for kind in ("invariance", "equivariance")]
    cfgs = {source: cfg for (source, _), cfg in plan.configs.items()}
    base = cfgs["base"]
    assert base.method == method and base.params.equivariance.weight == 0  # lambda 0: the base method exactly
    assert _names(base.augment.pipeline) == ["crop", "jitter"]
    for t in STUDIED:
        inv, eq = cfgs[f"{t}-invariance"], cfgs[f"{t}-equivariance"]
        # invariance: the base pipeline with T appended, no equivariance objective
        assert inv.augment.pipeline[:-1] == base.augment.pipeline and inv.augment.pipeline[-1]["name"] == t
        assert inv.params.equivariance.weight == 0
        # equivariance: the base views, predicting T (the augmentation's own spec) on the extra view
        assert eq.augment.pipeline == base.augment.pipeline
        assert eq.params.equivariance.target == [inv.augment.pipeline[-1]]
        assert eq.params.equivariance.weight == weight
        assert _names(eq.params.equivariance.view) == ["crop", "jitter"]
        for cfg in (inv, eq):  # the same budget everywhere
            assert (cfg.method, cfg.model, cfg.data, cfg.optim, cfg.trainer) == \
                   (base.method, base.model, base.data, base.optim, base.trainer)
        for kind in ("inv", "eq"):
            assert {s for s, target in plan.cells if target == f"{kind}-{t}"} == {"base", f"{t}-invariance",
                                                                                 f"{t}-equivariance"}
    assert {s for s, target in plan.cells if target == "linear"} == set(plan.recipe.sources)
    assert len(plan.recipe.contrasts) == 3 * len(STUDIED)


def test_append_override_needs_lists_on_both_sides(tmp_path):
    recipe = tmp_path / "study.yaml"
    text = """
pretrain: e-simclr-controlled
sources:
  plus-vflip: {augment.pipeline+: [{name: vflip, p: 0.5}]}
targets:
  linear: {protocol: linear}
"""
    recipe.write_text(text)
    cfg = next(iter(load_study(str(recipe)).configs.values()))
    assert _names(cfg.augment.pipeline) == ["crop", "hflip", "jitter", "grayscale", "vflip"]
    recipe.write_text(text.replace("augment.pipeline+", "optim.lr+"))
    with pytest.raises(ConfigError, match=r"study source 'plus-vflip'.*'optim.lr\+' appends a list"):
        load_study(str(recipe))


@pytest.mark.slow
def test_essl_study_runs_some_cells_at_a_tiny_budget(tmp_path):
    tiny = [
        "overrides.model.width=4", "overrides.data.batch_size=16", "overrides.trainer.limit_train_batches=2",
        "overrides.trainer.max_epochs=1", "overrides.trainer.check_val_every_n_epoch=1",
        "overrides.data.controlled={train_samples: 48, test_samples: 32, num_classes: 4, num_backgrounds: 8}",
        "overrides.params.equivariance.hidden=[16, 16]", "targets.linear.options.epochs=2",
        "targets.eq-jigsaw.options.num_samples=32", "targets.inv-rot90.options.num_samples=32",
        "cells=[[base, linear], [rot90-invariance, inv-rot90], [jigsaw-equivariance, eq-jigsaw]]",
        "contrasts={}",
    ]
    out = tmp_path / "study"
    result = run_study(load_study("essl-controlled", tiny), out, log=lambda *_: None)
    assert result["complete"] and result["computed_this_invocation"] == {"pretraining_runs": 3, "cells": 3}
    assert 0 <= result["matrix"]["base"]["linear"]["mean"] <= 1
    assert 0 <= result["matrix"]["jigsaw-equivariance"]["eq-jigsaw"]["mean"] <= 1
    assert result["matrix"]["rot90-invariance"]["inv-rot90"]["mean"] >= 0
    run = json.loads((out / "runs" / "jigsaw-equivariance" / "seed0" / "summary.json").read_text())
    assert run["method"] == "e_simclr" and any(k.startswith("train/equivariance/jigsaw") for k in run["metrics"])
    assert "| jigsaw-equivariance |" in (out / "study.md").read_text()

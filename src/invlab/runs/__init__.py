"""Runs: recipes, run folders, checkpoints, export, pretraining and evaluation drivers."""

from invlab.runs.config import Config, load_recipe, recipe_names
from invlab.runs.encoders import export_encoder
from invlab.runs.evaluate_run import evaluate
from invlab.runs.export import load_encoder
from invlab.runs.pretrain_run import pretrain
from invlab.runs.run_dir import RunDir

__all__ = ["Config", "load_recipe", "recipe_names", "evaluate", "export_encoder", "load_encoder", "pretrain", "RunDir"]

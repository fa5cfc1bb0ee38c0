"""The peer arms of the throughput benchmarks, in their own process: run by
benchmarks/peer_throughput.py with the peers venv's Python (benchmarks/setup_peers.sh:
lightly beside a torch + torchvision pair), or, on a GPU machine, with any Python that
has torch, torchvision and lightly.

Arms:
- ``lightly``: lightly's documented SimCLR recipe (examples/pytorch/simclr.py): its
  ``SimCLRTransform`` on PIL images in DataLoader workers (``LightlyDataset`` over the
  image folder, shuffle, drop_last), two forward passes (one per view), its
  ``NTXentLoss``, SGD. The model is invlab's own ResNet and projector, loaded from
  ``src/invlab/nn/{resnet,heads}.py`` by path (no other invlab import), so both libraries
  train the same architecture.
- ``raw_peer``: the same model's forward + backward + SGD step on ready tensors in this
  process's torch (tells a torch-version difference from a pipeline difference).

Protocol: one JSON object per line on stdin (``{"arm": "lightly", "steps": N, "skip": S}``,
``{"arm": "quit"}``); one answer per line on stdout, prefixed ``@@`` (libraries may print
too): ``{"arm", "steps", "samples", "seconds"}``. The first answer is
``{"ready": true, ...}`` with versions.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import torch
from torch import nn

SRC = Path(__file__).resolve().parent.parent / "src" / "invlab" / "nn"
PREFIX = "@@"


def load_by_path(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


class SimCLRModel(nn.Module):
    """invlab's backbone + projector (the same classes invlab trains)."""

    def __init__(self, model: dict):
        super().__init__()
        resnet = load_by_path("invlab_peer_resnet", SRC / "resnet.py")
        heads = load_by_path("invlab_peer_heads", SRC / "heads.py")
        self.backbone = getattr(resnet, model["backbone"])(width=model["width"], stem=model["stem"])
        self.projection_head = heads.HeadSpec(**model["projector"]).build(self.backbone.feature_dim)

    def forward(self, x):
        return self.projection_head(self.backbone(x))


def send(obj: dict) -> None:
    sys.stdout.write(PREFIX + json.dumps(obj) + "\n")
    sys.stdout.flush()


class Arms:
    def __init__(self, args, spec: dict):
        self.device = torch.device(args.device)
        self.batch = spec["batch"]
        self.size = spec["image_size"]
        self.spec = spec
        torch.manual_seed(0)
        self.model = SimCLRModel(spec["model"]).to(self.device)
        self.model.train()
        o = spec["optim"]
        self.opt = torch.optim.SGD(self.model.parameters(), lr=o["lr"], momentum=o["momentum"],
                                   weight_decay=o["weight_decay"])
        self.loader = None
        self.lightly_error = None
        if "lightly" in args.arms:
            try:
                self.loader, self.criterion = self._lightly(args, spec)
            except Exception as err:  # reported to the controller, which records it
                self.lightly_error = f"{type(err).__name__}: {err}"
        if "raw_peer" in args.arms:
            from lightly.loss import NTXentLoss  # noqa: I001 - only for the peer raw arm's loss

            self.raw_criterion = NTXentLoss(temperature=spec["temperature"])
            self.raw_x = torch.rand(self.batch, 3, self.size, self.size, device=self.device)
            self.raw_y = torch.rand(self.batch, 3, self.size, self.size, device=self.device)

    def _lightly(self, args, spec):
        from lightly.data import LightlyDataset
        from lightly.loss import NTXentLoss
        from lightly.transforms import SimCLRTransform

        a = spec["lightly_transform"]
        transform = SimCLRTransform(input_size=self.size, **a)
        dataset = LightlyDataset(input_dir=args.images, transform=transform)
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=self.batch, shuffle=True, drop_last=True, num_workers=args.workers,
            pin_memory=self.device.type == "cuda",
        )
        return loader, NTXentLoss(temperature=spec["temperature"])

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def _step(self, x0, x1, criterion) -> None:
        z0 = self.model(x0)
        z1 = self.model(x1)
        loss = criterion(z0, z1)
        loss.backward()
        self.opt.step()
        self.opt.zero_grad()

    def lightly(self, steps: int, skip: int) -> float:
        """Seconds from the arrival of batch ``skip`` to the arrival of batch
        ``skip + steps`` of a fresh iterator (workers start with it and stop after it, so
        they do no work while another arm runs); both ends are the same pipeline state."""
        if self.loader is None:
            raise RuntimeError(self.lightly_error or "the lightly arm was not set up")
        it = iter(self.loader)
        t0 = None
        try:
            for i in range(skip + steps + 1):
                batch = next(it)
                if i == skip:
                    self._sync()
                    t0 = time.perf_counter()
                elif i == skip + steps:
                    self._sync()
                    return time.perf_counter() - t0
                x0, x1 = batch[0]
                self._step(x0.to(self.device), x1.to(self.device), self.criterion)
        finally:
            del it
        raise RuntimeError(f"the data set holds fewer than {skip + steps + 1} batches")

    def raw_peer(self, steps: int, skip: int) -> float:
        for _ in range(skip):
            self._step(self.raw_x, self.raw_y, self.raw_criterion)
        self._sync()
        t0 = time.perf_counter()
        for _ in range(steps):
            self._step(self.raw_x, self.raw_y, self.raw_criterion)
        self._sync()
        return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", required=True, help="JSON: model, batch, image_size, optim, temperature, ...")
    parser.add_argument("--images", help="image folder for the lightly arm")
    parser.add_argument("--arms", default="lightly,raw_peer")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    args.arms = args.arms.split(",")
    torch.set_num_threads(args.threads)
    if args.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    spec = json.loads(args.spec)
    arms = Arms(args, spec)
    versions = {"torch": torch.__version__, "python": sys.version.split()[0]}
    try:
        import lightly
        import torchvision

        versions.update(lightly=lightly.__version__, torchvision=torchvision.__version__)
    except ImportError as err:
        versions["lightly_import_error"] = str(err)
    send({"ready": True, "versions": versions, "threads": torch.get_num_threads(), "workers": args.workers,
          "lightly_error": arms.lightly_error})
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["arm"] == "quit":
            break
        try:
            seconds = getattr(arms, cmd["arm"])(int(cmd["steps"]), int(cmd.get("skip", 0)))
            send({"arm": cmd["arm"], "steps": cmd["steps"], "samples": cmd["steps"] * arms.batch, "seconds": seconds})
        except Exception as err:
            send({"arm": cmd["arm"], "error": f"{type(err).__name__}: {err}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())

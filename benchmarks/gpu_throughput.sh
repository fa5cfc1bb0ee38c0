#!/usr/bin/env bash
# SimCLR training throughput on one GPU: invlab's training path, the raw model
# (forward + backward + SGD step on ready tensors) and lightly's documented recipe
# (SimCLRTransform on PIL images in DataLoader workers + NTXentLoss), interleaved in
# rounds by benchmarks/peer_throughput.py, at
#   - ResNet-18, CIFAR stem, width 64, 32 px (the CIFAR-10 JPEG copy), batch 512;
#   - ResNet-50, ImageNet stem, 224 px crops of 256 px JPEGs (made from CIFAR-10 images
#     here, so it needs no other data set), batch 128.
# Prints samples/s of each arm and writes benchmarks/results/gpu_throughput_<card>.json
# and .md (<card> = torch.cuda.get_device_name, spaces as underscores). Under 5 minutes
# on an H100-class card.
#
#   bash benchmarks/gpu_throughput.sh                       # on a GPU machine
#   bash benchmarks/gpu_throughput.sh --device cpu --dry-run  # CPU check of the whole path
#   bash benchmarks/gpu_throughput.sh --fetch-wheels        # here: wheels for a machine without a registry
# On a machine without a registry, bring benchmarks/.wheels (--fetch-wheels) and the data
# (shared/data/cifar10-jpg.tar.gz inside the tree, or --data) along with the tree.
#
# Set-up on a bare machine: a Python whose torch sees the GPU ($PYTHON, else python3, else
# benchmarks/.venv-peers/bin/python); invlab from this tree (PYTHONPATH=src); what that
# Python lacks of invlab's and lightly's needs (kornia, lightly) is installed into an
# overlay folder with pip --no-deps, from benchmarks/.wheels if it exists (made by
# --fetch-wheels on a machine with a registry), else from the registry. If lightly still
# cannot be imported, its arm reports why and the other arms run. PEERS_PYTHON=... runs
# lightly's arm in another Python (e.g. benchmarks/.venv-peers/bin/python from
# setup_peers.sh) instead.
#
# CPU check here: PYTHON=/work/main/.venv/bin/python PEERS_PYTHON=benchmarks/.venv-peers/bin/python \
#   bash benchmarks/gpu_throughput.sh --device cpu --dry-run
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
DEVICE=cuda
DRY=0
DATA="${DATA:-$ROOT/../shared/data/cifar10-jpg.tar.gz}"
[ -f "$DATA" ] || DATA="$ROOT/shared/data/cifar10-jpg.tar.gz"
WORK="${WORK:-${TMPDIR:-/tmp}/invlab-gpu-throughput}"
OUT="${RESULTS:-$HERE/results}"
WHEELS="$HERE/.wheels"
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    --data) DATA="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --fetch-wheels)
      # pure-Python lightly and kornia (+ kornia_rs, built for the GPU machine's Python 3.12)
      mkdir -p "$WHEELS"
      python3 -m pip download --no-deps -d "$WHEELS" lightly==1.6.0 kornia==0.9.0 || exit 1
      python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$WHEELS" kornia_rs==0.2.0 || exit 1
      ls -l "$WHEELS"; exit 0 ;;
    -h|--help) sed -n 2,30p "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "gpu_throughput: unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$WORK"
if [ ! -f "$DATA" ] && [ ! -d "$DATA" ]; then
  echo "gpu_throughput: no CIFAR-10 JPEG copy at $DATA: pass --data, or copy cifar10-jpg.tar.gz (19 MB) into" \
       "shared/data/ inside the tree (on a lent GPU machine the ../shared beside the checkout is not there)" >&2
  exit 1
fi

# -- a Python whose torch runs on $DEVICE -------------------------------------------------
has_device() {  # PY -> 0 if its torch imports and sees $DEVICE
  "$1" -c "import sys, torch; sys.exit(0 if '$DEVICE' == 'cpu' or torch.cuda.is_available() else 1)" 2>/dev/null
}
PY=""
for candidate in ${PYTHON:-} python3 "$HERE/.venv-peers/bin/python"; do
  if command -v "$candidate" >/dev/null 2>&1 && has_device "$(command -v "$candidate")"; then
    PY="$(command -v "$candidate")"; break
  fi
done
if [ -z "$PY" ]; then
  echo "gpu_throughput: no Python with a torch that sees $DEVICE (tried \$PYTHON, python3, $HERE/.venv-peers)" >&2
  exit 1
fi
echo "gpu_throughput: Python $PY ($("$PY" -c 'import torch; print("torch", torch.__version__)'))"

# -- what that Python lacks goes into an overlay folder --------------------------------------
SITE="$WORK/site"
mkdir -p "$SITE"
export PYTHONPATH="$ROOT/src:$SITE${PYTHONPATH:+:$PYTHONPATH}"
install_missing() {  # MODULE PIP-NAME...
  local module="$1"; shift
  "$PY" -c "import $module" 2>/dev/null && return 0
  echo "gpu_throughput: installing $* for '$module' into $SITE"
  if [ -d "$WHEELS" ]; then
    "$PY" -m pip install -q --no-index --no-deps --find-links "$WHEELS" --target "$SITE" "$@" 2>&1 | tail -2
  fi
  "$PY" -c "import $module" 2>/dev/null && return 0
  "$PY" -m pip install -q --no-deps --target "$SITE" "$@" 2>&1 | tail -2
  "$PY" -c "import $module" 2>/dev/null
}
for need in lightning numpy PIL safetensors yaml sklearn skimage matplotlib tqdm; do
  "$PY" -c "import $need" 2>/dev/null || { echo "gpu_throughput: $PY lacks $need (invlab needs it)" >&2; exit 1; }
done
install_missing kornia kornia==0.9.0 kornia_rs==0.2.0 || { echo "gpu_throughput: kornia (invlab needs it) could not be installed" >&2; exit 1; }
ARMS=lightly
LIGHTLY_NOTE=""
PEERS="${PEERS_PYTHON:-$PY}"
if [ -n "${PEERS_PYTHON:-}" ]; then
  echo "gpu_throughput: lightly's arm runs in $PEERS_PYTHON"
else
  install_missing lightly lightly==1.6.0 >/dev/null 2>&1
  if ! WHY=$("$PY" -c "import lightly.loss, lightly.transforms, lightly.data" 2>&1); then
    LIGHTLY_NOTE="lightly does not import in $PY ($(echo "$WHY" | tail -1)); its arm did not run"
    echo "gpu_throughput: $LIGHTLY_NOTE" >&2
    ARMS=""
  fi
fi

# -- the 224 px image folder: 256 px JPEGs made from CIFAR-10 images ----------------------------
BIG="$WORK/cifar256"
N_BIG=$([ "$DRY" = 1 ] && echo 64 || echo 4096)
"$PY" - "$DATA" "$BIG" "$N_BIG" <<'PY' || exit 1
import sys
from pathlib import Path
from PIL import Image
from invlab.data.archive import extract_once, is_archive
data, out, n = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
if (out / f".complete-{n}").exists():
    sys.exit(0)
root = extract_once(data) if is_archive(data) else data
split_dirs = {s: next(p for p in [root, *root.rglob("*")] if (p / s).is_dir()) / s for s in ("train", "test")}
for split, count in (("train", n), ("test", max(10, n // 20))):
    classes = sorted(p for p in split_dirs[split].iterdir() if p.is_dir())
    per = max(1, count // len(classes))
    for c in classes:
        (out / split / c.name).mkdir(parents=True, exist_ok=True)
        for f in sorted(c.iterdir())[:per]:
            Image.open(f).convert("RGB").resize((256, 256), Image.BICUBIC).save(out / split / c.name / f.with_suffix(".jpg").name, quality=90)
(out / f".complete-{n}").touch()
PY

# -- the measurement ---------------------------------------------------------------------------
CARD=$("$PY" -c "import torch; print(torch.cuda.get_device_name() if '$DEVICE' != 'cpu' else 'cpu')" | tr ' /' '__')
NAME="gpu_throughput_${CARD}"
if [ "$DRY" = 1 ]; then
  NAME="${NAME}_dry_run"; OUT="$WORK/results"
  SMALL=(--configs 8x8 --rounds 1 --steps 1 --warmup-steps 1 --lightly-skip 1)
  BIGCFG=(--configs 8x4 --rounds 1 --steps 1 --warmup-steps 1 --lightly-skip 1)
else
  SMALL=(--configs 64x512 --rounds 5 --block-seconds 4 --max-steps 40 --warmup-steps 10)
  BIGCFG=(--configs 64x128 --rounds 5 --block-seconds 4 --max-steps 40 --warmup-steps 10)
fi
WORKERS=$([ "$DEVICE" = cpu ] && echo 2 || echo 8)
COMMON=(--device "$DEVICE" --arms "$ARMS" --peers-python "$PEERS" --lightly-workers "$WORKERS"
        --lightly-workers-reason "lightly's examples/pytorch/simclr.py uses num_workers=8"
        --goal-raw 0.9 --goal-lightly 3.0 --goal-lightly-widths 64 --out "$WORK/results")
export PEERS_PYTHONPATH="$SITE"
export PYTHONUNBUFFERED=1
"$PY" "$HERE/peer_throughput.py" "${COMMON[@]}" "${SMALL[@]}" --name "${NAME}_r18_32" || exit 1
"$PY" "$HERE/peer_throughput.py" "${COMMON[@]}" "${BIGCFG[@]}" --name "${NAME}_r50_224" \
  --data "$BIG" --data-name image_folder --backbone resnet50 --stem imagenet --image-size 224 \
  --projector-hidden 2048 --goal-lightly-widths none || exit 1

# -- one JSON + markdown with the card's name --------------------------------------------------------
mkdir -p "$OUT"
"$PY" - "$WORK/results" "$OUT" "$NAME" "$LIGHTLY_NOTE" <<'PY'
import json, sys
from pathlib import Path
src, out, name, note = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
rows = []
md = [f"# {name}", ""]
for part in ("r18_32", "r50_224"):
    part_rows = json.loads((src / f"{name}_{part}.json").read_text())
    for row in part_rows:
        row["config"] = part
        if note:
            row["lightly_note"] = note
    rows += part_rows
    md += [f"## {part}", "", (src / f"{name}_{part}.md").read_text().split("\n", 2)[2], ""]
if note:
    md += [f"Note: {note}.", ""]
(out / f"{name}.json").write_text(json.dumps(rows, indent=2) + "\n")
(out / f"{name}.md").write_text("\n".join(md))
print(f"gpu_throughput: wrote {out / (name + '.json')}")
for row in rows:
    ls = row["lightly_samples_per_s"]
    print(f"{row['config']}: invlab {row['invlab_samples_per_s']:.1f}, raw {row['raw_samples_per_s']:.1f}, "
          f"lightly {'n/a' if ls is None else f'{ls:.1f}'} samples/s on {row['run']['machine']}")
PY

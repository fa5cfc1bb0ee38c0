#!/usr/bin/env bash
# Creates benchmarks/.venv-peers: the peer library (lightly) beside the newest torch +
# torchvision pair the registry offers here, for benchmarks/peer_throughput.py and
# benchmarks/gpu_throughput.sh. Separate from invlab's own venv: PyPI's torchvision does not
# import beside invlab's CPU torch build, and invlab's venv must never get a CUDA torch.
#
#   bash benchmarks/setup_peers.sh [PYTHON]      # PYTHON: default python3.11, else python3
#
# Pins (override with TORCH_VERSION / TORCHVISION_VERSION / LIGHTLY_VERSION):
#   x86_64:  torch 2.14.1 + torchvision 0.29.1 (a CUDA build; pip takes both from this
#            machine's disk; also runs on the CPU)
#   aarch64: torch 2.9.1 + torchvision 0.24.1 (a CPU build)
# lightly is installed in the same pip command as the pinned pair, so its open
# `torch` / `torchvision` requirements can never replace them.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${PEERS_VENV:-$HERE/.venv-peers}"
PY="${1:-$(command -v python3.11 || command -v python3)}"
case "$(uname -m)" in
  x86_64) TV="${TORCH_VERSION:-2.14.1}"; VV="${TORCHVISION_VERSION:-0.29.1}" ;;
  aarch64|arm64) TV="${TORCH_VERSION:-2.9.1}"; VV="${TORCHVISION_VERSION:-0.24.1}" ;;
  *) echo "setup_peers: unknown machine $(uname -m); set TORCH_VERSION and TORCHVISION_VERSION" >&2; exit 2 ;;
esac
LV="${LIGHTLY_VERSION:-1.6.0}"

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - "$TV" "$VV" "$LV" <<'PY' 2>/dev/null
import sys, importlib.metadata as md
want = dict(zip(["torch", "torchvision", "lightly"], sys.argv[1:]))
have = {name: md.version(name).split("+")[0] for name in want}
sys.exit(0 if have == want else 1)
PY
then
  echo "setup_peers: $VENV already has torch $TV, torchvision $VV, lightly $LV"
  exit 0
fi

echo "setup_peers: creating $VENV with $PY (torch $TV, torchvision $VV, lightly $LV)"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "torch==$TV" "torchvision==$VV"
"$VENV/bin/python" -m pip install --quiet "lightly==$LV" "torch==$TV" "torchvision==$VV"
"$VENV/bin/python" - <<'PY'
import lightly, torch, torchvision
from lightly.loss import NTXentLoss
from lightly.transforms import SimCLRTransform
print(f"setup_peers: ok: torch {torch.__version__}, torchvision {torchvision.__version__}, lightly {lightly.__version__}, "
      f"cuda available: {torch.cuda.is_available()}")
PY

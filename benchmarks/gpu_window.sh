#!/usr/bin/env bash
# One GPU window (see benchmarks/gpu_window.py): bash benchmarks/gpu_window.sh PACK MINUTES OUT [options...]
# Run in the repository root on the device machine, after `python benchmarks/prepare_window.py` here. Wheels the
# machine lacks (rapidfuzz) travel in .whl/, the packs in window/ (both named in the device tool's carry); the
# wheels are installed first; htrlab runs from src/ without installing.
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: bash benchmarks/gpu_window.sh PACK MINUTES OUT [--init CKPT] [--set KEY=VALUE ...]" >&2
  exit 2
fi
pack="$1"; minutes="$2"; out="$3"; shift 3
py="$(command -v python3 || command -v python)"
if compgen -G ".whl/*.whl" > /dev/null && ! "$py" -c "import importlib.util as u, sys
sys.exit(not all(u.find_spec(m) for m in ('rapidfuzz',)))"; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD/src:$PWD/benchmarks:${PYTHONPATH:-}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
"$py" -c "import htrlab.train.loop" || { echo "htrlab cannot be imported here: carry the missing wheels in .whl/" >&2; exit 3; }
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true
"$py" benchmarks/gpu_window.py --pack "$pack" --minutes "$minutes" --out "$out" "$@" 2>&1 | tee "$out/window.log"

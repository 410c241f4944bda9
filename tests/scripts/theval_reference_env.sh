#!/usr/bin/env bash
# The audio stack THEval's lip-sync and silent-lip scripts import, at the versions its
# requirements.txt pins, installed into a folder of their own (never into the venv) for the
# parity tests in tests/test_theval.py:
#   bash tests/scripts/theval_reference_env.sh /tmp/theval-ref
#   THEVAL_REF_SITE=/tmp/theval-ref python -m pytest tests/test_theval.py
# --no-deps: their numpy/torch/scipy are the venv's (silero-vad's torchaudio is replaced by a
# stand-in file reader in tests/scripts/theval_reference.py; see its docstring).
set -euo pipefail
target="${1:?usage: theval_reference_env.sh FOLDER}"
python -m pip install --quiet --target "$target" --no-deps \
  silero-vad==5.1.2 pydub==0.25.1 librosa==0.11.0 moviepy==1.0.3 decord==0.6.0 \
  numba==0.68.1 llvmlite==0.50.0 soxr==1.1.0 audioread==3.1.0 decorator==5.3.2 pooch==1.9.0 \
  proglog==0.1.12 imageio-ffmpeg==0.8.1

"""The 24 "redefined" FEAFA+ Action Units AUHead predicts, and stage 1's audio framing.

The AU names, their order and the 25 / 5 fps rates are shared with metrics and datasets, so
they are defined in the core's ``auhead_bench.aus`` and only re-exported here.
"""

from __future__ import annotations

from auhead_bench.aus import AU_NAMES as AU_NAMES
from auhead_bench.aus import N_AUS as N_AUS
from auhead_bench.aus import TOKEN_FPS as TOKEN_FPS
from auhead_bench.aus import VIDEO_FPS as VIDEO_FPS

AUDIO_RATE = 16000
SAMPLES_PER_TOKEN_FRAME = AUDIO_RATE // TOKEN_FPS  # 3200

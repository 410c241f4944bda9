"""The 24 "redefined" FEAFA+ Action Units AUHead predicts, in the authors' order.

Values are continuous in [0, 1]. Order and meaning from the authors' stage-1 code (see
AUHEAD.md): index i of every AU vector in this suite is AU_NAMES[i].
"""

from __future__ import annotations

AU_NAMES: tuple[str, ...] = (
    "left_eye_closure",
    "right_eye_closure",
    "left_lid_raise",
    "right_lid_raise",
    "left_brow_lower",
    "right_brow_lower",
    "left_brow_raise",
    "right_brow_raise",
    "jaw_drop_mouth_open",
    "lower_lip_slide_left",
    "lower_lip_slide_right",
    "left_lip_corner_raise",
    "right_lip_corner_raise",
    "left_lip_corner_stretch",
    "right_lip_corner_stretch",
    "upper_lip_suck",
    "lower_lip_suck",
    "jaw_thrust",
    "upper_lip_raise",
    "lower_lip_depress",
    "chin_raise",
    "lip_pucker",
    "cheek_puff",
    "nose_wrinkle",
)
N_AUS = len(AU_NAMES)
VIDEO_FPS = 25  # AU tracks in this suite are per video frame at 25 fps
TOKEN_FPS = 5  # stage 1 reads and writes AUs at 5 fps (every 5th frame)
AUDIO_RATE = 16000
SAMPLES_PER_TOKEN_FRAME = AUDIO_RATE // TOKEN_FPS  # 3200

"""Synthetic shots whose content steps sit where PySceneDetect 0.5.1 and 0.6.x disagree.

Shared by tests/test_shots.py and tests/scripts/scenedetect051_reference.py (which runs under
Python 3.8 in 0.5.1's isolated environment, so: no newer syntax, NumPy's legacy RandomState,
integer arithmetic only: the frames are the same bytes under NumPy 1.24 and 2.x).

Each video is a list of events; between events the frame repeats. ``blend`` k mixes a fresh
noise texture into the frame (k/4096); ``grid``/``offgrid`` do so only on / off the pixels
0.5.1's subsampling keeps (``[::n, ::n]``); ``flash`` brightens one frame.
"""

from __future__ import annotations

import numpy as np

FPS = 25
# (name, width, height, frames, events): events are (frame, kind, k)
VIDEOS = [
    ("w400", 400, 224, 130, [
        (20, "blend", 2607),   # step 27..30: 0.6.x cuts, 0.5.1 does not
        (40, "blend", 2717),   # step just above 30: both cut
        (46, "blend", 2369),   # > 30 but 6 frames after a cut: 0.5.1's min_scene_len holds it
        (64, "grid", 2643),    # only on 0.5.1's subsampled grid: seen whole by 0.5.1
        (84, "offgrid", 4096),  # only off the grid: invisible to 0.5.1
        (100, "flash", 0),     # one bright frame: 0.5.1 cuts at it (no flash filter)
        (116, "blend", 2198),  # just below 30
    ]),
    ("w640", 640, 360, 100, [
        (10, "blend", 2427),
        (30, "grid", 2115),
        (50, "blend", 3397),
        (70, "offgrid", 4096),
        (85, "blend", 2865),
    ]),
    ("w960", 960, 540, 80, [
        (10, "blend", 2048),
        (30, "grid", 2346),
        (55, "blend", 1676),
    ]),
    # no pixel noise: 0.6.x's linear resize then sees the step as 0.5.1 does, and cuts at 27
    ("w480s", 480, 272, 60, [
        (20, "blend", 2189),  # 27..30: 0.6.x cuts here, 0.5.1 does not
        (40, "blend", 1928),  # just above 30: both cut
    ]),
]
SMOOTH = {"w480s"}


def downscale(width: int) -> int:
    """The subsampling step of the grid events (0.5.1's table; restated so this file stands
    alone under Python 3.8)."""
    for edge, factor in ((3200, 12), (2100, 8), (1700, 6), (1200, 5), (900, 4), (600, 3),
                         (400, 2)):
        if width >= edge:
            return factor
    return 1


def texture(seed: int, height: int, width: int, smooth: bool = False) -> np.ndarray:
    """Coloured noise (none when ``smooth``) over a smooth colour field (BGR uint8)."""
    rs = np.random.RandomState(seed)
    noise = rs.randint(0, 128, size=(height, width, 3)).astype(np.int32)
    if smooth:
        noise = noise * 0
    base = rs.randint(0, 128, size=(3,)).astype(np.int32)
    y = np.arange(height, dtype=np.int32)[:, None, None]
    x = np.arange(width, dtype=np.int32)[None, :, None]
    field = base[None, None, :] + (x * 64 // width) * (np.arange(3) % 2) + (y * 64 // height)
    return np.clip(field + noise, 0, 255).astype(np.uint8)


def frames(name: str) -> list[np.ndarray]:
    """Every BGR frame of the named video (the repeated ones share memory)."""
    spec = next(v for v in VIDEOS if v[0] == name)
    _, width, height, count, events = spec
    factor = downscale(width)
    on_grid = np.zeros((height, width, 1), bool)
    on_grid[::factor, ::factor] = True
    smooth = name in SMOOTH
    current = texture(1000 + width, height, width, smooth)
    at = {frame: (kind, k) for frame, kind, k in events}
    out = []
    flash_of = None
    for number in range(count):
        if flash_of is not None:
            current, flash_of = flash_of, None
        if number in at:
            kind, k = at[number]
            if kind == "flash":
                flash_of = current
                current = np.clip(current.astype(np.int32) + 120, 0, 255).astype(np.uint8)
            else:
                fresh = texture(7 * number + width, height, width, smooth).astype(np.int32)
                mixed = ((current.astype(np.int32) * (4096 - k) + fresh * k) >> 12)
                if kind == "grid":
                    mixed = np.where(on_grid, mixed, current)
                elif kind == "offgrid":
                    mixed = np.where(on_grid, current, mixed)
                current = mixed.astype(np.uint8)
        out.append(current)
    return out

"""Hallo v1 (fudan-generative-vision/hallo, MIT) rebuilt in our own code, parameter for parameter,
so its released ``net.pth`` and AnimateDiff's ``mm_sd_v15_v2.ckpt`` load with ``strict=True``."""

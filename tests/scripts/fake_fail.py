"""A fake baseline that fails: a traceback-like stderr, then exit status 3."""

import sys

for i in range(50):
    print(f"loading layer {i}", file=sys.stderr)
print("RuntimeError: CUDA out of memory (fake)", file=sys.stderr)
sys.exit(3)

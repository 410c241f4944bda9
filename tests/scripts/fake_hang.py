"""A fake baseline that hangs, with a child process that hangs too: --pidfile PATH."""

import argparse
import subprocess
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--pidfile", required=True)
args, _ = parser.parse_known_args()
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
with open(args.pidfile, "w") as handle:
    handle.write(f"{child.pid}\n")
print("working...", flush=True)
time.sleep(600)

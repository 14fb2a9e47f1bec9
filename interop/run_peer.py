"""Starts a peer of `cargo xtask interop` so that it cannot outlive the xtask that started it.

Usage: python3 run_peer.py PARENT_PID PROGRAM [ARGS...]

It asks the kernel to send SIGTERM to this process when its parent (xtask) exits, however xtask
ends (a panic, Ctrl-C, a kill), then replaces itself with PROGRAM, which keeps the pid, the
process group xtask gave it, and the parent-death signal. xtask still stops every peer itself,
by its process group, on every exit path it controls; this is the backstop for those it does not.
"""

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: run_peer.py PARENT_PID PROGRAM [ARGS...]")
    parent = int(sys.argv[1])
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        sys.exit("run_peer.py: prctl(PR_SET_PDEATHSIG) failed: errno %d" % ctypes.get_errno())
    # The parent may have exited before the signal was armed.
    if os.getppid() != parent:
        sys.exit("run_peer.py: xtask exited before the peer started")
    os.execvp(sys.argv[2], sys.argv[2:])


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""test/clients/pty.py: run a command on a pseudo-terminal of its own and
drive it with a script of steps, for the terminal scenarios of run.sh.

    pty.py [-s ROWSxCOLS] [-t TIMEOUT] [STEP...] -- CMD [ARGS...]

The steps run in order:
    ?TEXT          wait until TEXT appears in the output (after the point
                   where the previous ? step matched)
    +SECONDS       pause
    type:TEXT      write TEXT to the terminal (\\n, \\r, \\x04 unescaped)
    size:ROWSxCOLS set the window size; the kernel sends SIGWINCH to the
                   terminal's foreground process group (the client)
Everything the command writes is copied to stdout. The exit status is the
command's; 124 on timeout (TIMEOUT seconds, default 60) and 125 when the
command ended before a ? step matched.
"""
import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time


def set_size(fd, spec):
    rows, cols = (int(x) for x in spec.split("x"))
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def unescape(s):
    return s.replace("\\n", "\n").replace("\\r", "\r").replace("\\x04", "\x04").encode()


def main(argv):
    size, timeout, steps = "24x80", 60.0, []
    i = 0
    while i < len(argv) and argv[i] != "--":
        a = argv[i]
        if a in ("-s", "-t"):
            if a == "-s":
                size = argv[i + 1]
            else:
                timeout = float(argv[i + 1])
            i += 2
            continue
        if a[:1] in ("?", "+") or a.startswith("type:") or a.startswith("size:"):
            steps.append(a)
            i += 1
            continue
        sys.exit("pty.py: unknown argument " + a)
    cmd = argv[i + 1:]
    if not cmd:
        sys.exit(__doc__)

    master, slave = os.openpty()
    set_size(slave, size)

    def child_setup():
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True, preexec_fn=child_setup,
                            close_fds=True)
    os.close(slave)
    start = time.monotonic()
    out = sys.stdout.buffer
    seen = b""          # output since the last ? match
    pause_until = 0.0
    status = None
    while True:
        now = time.monotonic()
        # Run the steps that are ready.
        while steps and now >= pause_until:
            s = steps[0]
            if s.startswith("?"):
                want = s[1:].encode()
                k = seen.find(want)
                if k < 0:
                    break
                seen = seen[k + len(want):]
            elif s.startswith("+"):
                pause_until = now + float(s[1:])
            elif s.startswith("type:"):
                os.write(master, unescape(s[5:]))
            elif s.startswith("size:"):
                set_size(master, s[5:])
            steps.pop(0)
        if now - start > timeout:
            sys.stderr.write("pty.py: timeout; steps left: %r\n" % steps)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            status = 124
            break
        r, _, _ = select.select([master], [], [], 0.05)
        if r:
            try:
                data = os.read(master, 4096)
            except OSError:
                data = b""
            if data:
                out.write(data)
                out.flush()
                seen += data
                continue
            # EIO/EOF: the last holder of the terminal is gone.
            status = proc.wait()
            break
        if proc.poll() is not None:
            # Exited and the terminal was quiet for a moment.
            r, _, _ = select.select([master], [], [], 0.3)
            if not r:
                status = proc.returncode
                break
    if status < 0:
        status = 128 - status
    if status != 124 and any(s.startswith("?") for s in steps):
        sys.stderr.write("pty.py: the command ended; steps left: %r\n" % steps)
        status = 125
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""tgdist.DelayProxy whose delay can change while it runs.

The proxy of tests/distributed runs as a process of its own (so that it
never competes with the test's client threads for the interpreter lock)
with the delay it was started with.  This one reads a new delay, in
seconds, from each line of its standard input: set_delay() writes that
line.  Run as a program, this file is the proxy.
"""

import subprocess
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "distributed"))

import tgdist  # noqa: E402


class AdjustableDelayProxy(tgdist.DelayProxy):

    def start(self):
        self.proc = subprocess.Popen(
            [sys.executable, __file__, str(self.target_port),
             str(self.delay_s)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"the delay proxy did not start: {line!r}")
        self.port = int(line)
        return self

    def set_delay(self, delay_s):
        """Every chunk read from now on is held delay_s."""
        self.delay_s = delay_s
        self.proc.stdin.write(f"{delay_s}\n")
        self.proc.stdin.flush()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
        super().stop()

    # in the proxy's process -------------------------------------------

    def _follow_stdin(self):
        # a float assignment is atomic: the loop reads one or the other
        for line in sys.stdin:
            self.delay_s = float(line)

    def serve(self):
        threading.Thread(target=self._follow_stdin, daemon=True).start()
        super().serve()


if __name__ == "__main__":
    AdjustableDelayProxy(int(sys.argv[1]), float(sys.argv[2])).serve()

"""Run the mock server as a child process: what ``--demo``, the tests and bench/ use.

``MockerProcess`` starts ``python -m drbench.mocker.server`` on 127.0.0.1, port 0, waits for
its ready line, exposes the URL, and stops it (SIGTERM, then SIGKILL) on exit. If the child
dies or stays silent, the error carries its stderr. The child's stderr goes to a temporary
file, so a chatty child can never block on a full pipe.
"""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

from drbench.errors import DrbenchError, ExitStatus

__all__ = ["MockerProcess", "MockerStartError"]

_READY_RE = re.compile(r"^llm_mocker: serving on (http://\S+):(\d+)\s*$")
_STOP_TIMEOUT_S = 5.0


class MockerStartError(DrbenchError):
    """The mock server did not come up (it exited, or printed no ready line in time)."""

    exit_status = ExitStatus.ERROR

    def __init__(self, message: str, stderr: str = "") -> None:
        super().__init__(message)
        self.stderr = stderr  # the child's whole stderr, for debugging


class MockerProcess:
    """A running mock server; use as a context manager (or call ``start``/``stop``)."""

    def __init__(
        self,
        args: Sequence[str] = (),
        *,
        host: str = "127.0.0.1",
        startup_timeout_s: float = 20.0,
    ) -> None:
        self.args = list(args)
        self.host = host
        self.startup_timeout_s = startup_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self.base_url: str | None = None
        self._stderr: IO[bytes] | None = None  # the child's stderr, read back on failure

    def __enter__(self) -> MockerProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> MockerProcess:
        """Launch the child and wait for ``llm_mocker: serving on http://HOST:PORT``."""
        cmd = [
            sys.executable,
            "-m",
            "drbench.mocker.server",
            "--host",
            self.host,
            "--port",
            "0",
            *self.args,
        ]
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=_child_env(),
        )
        try:
            line = self._read_ready_line()
        except BaseException:
            self.stop()
            raise
        m = _READY_RE.match(line)
        assert m is not None  # _read_ready_line only returns matching lines
        self.base_url = f"{m.group(1)}:{m.group(2)}"
        self.port = int(m.group(2))
        return self

    def stop(self) -> int | None:
        """Terminate the child (idempotent); returns its exit code."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        return proc.returncode

    def stderr_text(self) -> str:
        """What the child wrote to stderr so far (empty once stopped)."""
        if self._stderr is None:
            return ""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def url(self, path: str) -> str:
        """``base_url`` joined with ``path`` (e.g. ``"/v1/chat/completions"``)."""
        if self.base_url is None:
            raise MockerStartError("llm_mocker: the mock server is not running")
        return self.base_url + path

    def _read_ready_line(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        out = self.proc.stdout
        deadline = time.monotonic() + self.startup_timeout_s
        buf = b""
        with selectors.DefaultSelector() as sel:
            sel.register(out, selectors.EVENT_READ)
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise self._failure(f"printed no ready line within {self.startup_timeout_s} s")
                if not sel.select(timeout=left):
                    continue
                data = os.read(out.fileno(), 4096)
                if not data:
                    self.proc.wait(timeout=_STOP_TIMEOUT_S)
                    raise self._failure(f"exited with code {self.proc.returncode}")
                buf += data
        line = buf.split(b"\n", 1)[0].decode(errors="replace")
        if not _READY_RE.match(line):
            raise self._failure(f"printed {line!r} instead of its ready line")
        return line

    def _failure(self, what: str) -> MockerStartError:
        err = self.stderr_text().strip()
        detail = f": {err.splitlines()[-1]}" if err else ""
        msg = f"llm_mocker {what} (args: {' '.join(self.args) or 'none'}){detail}"
        return MockerStartError(msg, err)


def _child_env() -> dict[str, str]:
    """The parent's environment, with this checkout importable wherever the cwd is."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    parts = [root, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env

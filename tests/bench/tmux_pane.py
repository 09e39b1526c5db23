"""A small driver for one program in a private tmux server: launch it in a pane of a given
size, send keys, read the screen with `capture-pane -p`, find its process, and tear it all
down. Used by the Logs benchmark; nothing here asserts anything about the program.

Keys and captures go through one tmux control-mode client (`tmux -C`): a command costs
about 0.1 ms there, against 3-30 ms for a `tmux` process per command on a busy machine,
which would otherwise be most of a measured key round trip."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of a process, None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[0] != "Z"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None:
                parents[int(entry)] = st[1]
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == pid]
        found += kids
        frontier += kids
    return found


class PaneGone(AssertionError):
    """The tmux server or the program in the pane went away."""


class _Control:
    """A `tmux -C` client attached to the session: commands in, their output blocks out
    (`%begin` … `%end`/`%error`); notifications between blocks are skipped, and the pane's
    output notifications are turned off."""

    def __init__(self, socket: str, session: str) -> None:
        self.proc = subprocess.Popen(
            ["tmux", "-L", socket, "-C", "attach-session", "-t", session],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._block()  # the attach itself
        self.run("refresh-client -f no-output")

    def run(self, command: str) -> list[str]:
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            stdin.write(command.encode() + b"\n")
            stdin.flush()
        except OSError as exc:
            raise PaneGone(f"tmux control client gone: {exc}") from None
        ok, lines = self._block()
        if not ok:
            raise PaneGone(f"tmux {command.split()[0]} failed: {' '.join(lines)}")
        return lines

    def _block(self) -> tuple[bool, list[str]]:
        out = self.proc.stdout
        assert out is not None
        lines: list[str] = []
        number = None
        while True:
            raw = out.readline()
            if not raw:
                raise PaneGone("tmux control client ended")
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if number is None:
                if line.startswith("%begin "):
                    number = line.split()[2]
                continue
            if line.startswith(("%end ", "%error ")) and line.split()[2] == number:
                return line.startswith("%end "), lines
            lines.append(line)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _quoted(arg: str) -> str | None:
    """``arg`` as one word of a tmux command, or None when it needs more than single quotes."""
    return None if "'" in arg or "\n" in arg else f"'{arg}'"


@dataclass
class TmuxPane:
    """One session with one pane, on a tmux server of its own (`tmux -L <unique name>`)."""

    name: str
    width: int = 120
    height: int = 36
    socket: str = field(default="")
    session: str = "bench"
    pane_pid: int = 0
    _control: _Control | None = None

    def __post_init__(self) -> None:
        if not self.socket:
            self.socket = f"bva-bench-{self.name}-{os.getpid()}-{time.monotonic_ns()}"

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=check
        )

    def launch(self, argv: list[str], env: Mapping[str, str], cwd: Path) -> None:
        """Run `argv` as the pane's program (the shell execs it), with `env` set on top of
        the server's environment. stderr is left on the terminal: Textual draws through it."""
        assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        cmd = f"cd {shlex.quote(str(cwd))} && exec env {assigns} " + shlex.join(argv)
        self.tmux(
            "new-session",
            "-d",
            "-s",
            self.session,
            "-x",
            str(self.width),
            "-y",
            str(self.height),
            cmd,
        )
        # Keep the pane (and its last screen) if the program dies, so the failure is readable.
        self.tmux("set-option", "-t", self.session, "remain-on-exit", "on", check=False)
        # The control client must not resize the window it attaches to.
        self.tmux("set-option", "-g", "window-size", "manual", check=False)
        out = self.tmux("display", "-p", "-t", self.session, "#{pane_pid}").stdout.strip()
        self.pane_pid = int(out)
        self._control = _Control(self.socket, self.session)

    def capture(self, ansi: bool = False) -> str:
        """The visible screen as text (with `ansi`, with its colour and style escapes)."""
        if self._control is not None:
            flag = " -e" if ansi else ""
            lines = self._control.run(f"capture-pane -p{flag} -t {self.session}")
            return "\n".join(lines) + "\n"
        flags = ("-p", "-e") if ansi else ("-p",)
        proc = self.tmux("capture-pane", *flags, "-t", self.session, check=False)
        if proc.returncode != 0:
            raise PaneGone(f"tmux capture-pane failed: {proc.stderr.strip()}")
        return proc.stdout

    def dead(self) -> bool:
        out = self.tmux("display", "-p", "-t", self.session, "#{pane_dead}", check=False)
        return out.returncode != 0 or out.stdout.strip() == "1"

    def send(self, *keys: str) -> None:
        """tmux key names (`C-l`, `Enter`, `Tab`, `/`, …), one argument each."""
        words = [_quoted(k) for k in keys]
        if self._control is not None and all(words):
            self._control.run(f"send-keys -t {self.session} " + " ".join(map(str, words)))
            return
        self.tmux("send-keys", "-t", self.session, *keys)

    def type(self, text: str) -> None:
        """Literal text, every character a key press."""
        self.tmux("send-keys", "-t", self.session, "-l", text)

    def wait_for(
        self,
        pred: Callable[[str], bool],
        timeout: float,
        what: str,
        poll: float = 0.05,
        ansi: bool = False,
    ) -> str:
        """The first captured screen satisfying `pred`; fails with the last screen."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.capture(ansi)
            if pred(screen):
                return screen
            if self.dead():
                raise PaneGone(f"the program in the pane exited waiting for {what}:\n{screen}")
            time.sleep(poll)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}:\n{screen}")

    def close(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None
        pids = [self.pane_pid, *descendants(self.pane_pid)] if self.pane_pid else []
        self.tmux("kill-server", check=False)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(alive(p) for p in pids):
            time.sleep(0.05)
        for pid in pids:
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        # The server leaves its socket file behind; it is ours (named after this run).
        base = Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}"
        (base / self.socket).unlink(missing_ok=True)

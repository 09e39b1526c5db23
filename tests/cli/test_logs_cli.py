"""`bva logs`: merged text and JSON output on a real sandbox, filters, --previous on a crash
loop, following with Ctrl-C, one-line usage errors, and hostile log bytes made inert on the
way to stdout (served by a minimal stand-in API, since the sandbox writes only its own text)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.sandbox_proc import RunningSandbox
from tests.support.waiting import wait_until

LINE = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (?P<pod>\S+) "
    r"(?P<level>TRACE|DEBUG|INFO |WARN |ERROR|FATAL|-    ) (?P<message>.*)$"
)


def bva(*args: str, env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def parsed(stdout: str) -> list[re.Match[str]]:
    """Entry lines (continuations are indented by four spaces)."""
    heads = [ln for ln in stdout.splitlines() if not ln.startswith("    ")]
    matches = [LINE.match(ln) for ln in heads]
    assert all(matches), [ln for ln, m in zip(heads, matches, strict=True) if m is None][:3]
    return [m for m in matches if m is not None]


def wait_ready(sandbox: RunningSandbox, deployment: str) -> None:
    subprocess.run(
        ["kubectl", "-n", sandbox.namespace, "rollout", "status", f"deployment/{deployment}"],
        env=sandbox.env,
        check=True,
        capture_output=True,
        timeout=60,
    )


# --- usage errors need no cluster ------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-service"], "unknown service 'no-such-service' (the platform has: disc"),
        (["--grep", "(oops"], "bad --grep regex '(oops': missing ), unterminated subpattern"),
        (["--exclude", "*x"], "bad --exclude regex '*x': nothing to repeat at position 0"),
        (["--since", "10 minutes"], '--since: bad duration "10 minutes": expected seconds'),
        (["--since", "0"], "--since: must be more than 0"),
        (["--tail", "many"], "--tail: expected a whole number, got 'many'"),
        (["--tail", "-2"], "--tail: must be -1 or more, got -2"),
        (["--level", "loud"], "unknown level 'loud': use one of trace, debug, info"),
        (["-f", "--previous"], "--previous reads a finished container: it cannot be combined"),
        (["--max-streams", "0"], "--max-streams: must be 1 or more, got 0"),
        (["--env", "nowhere"], "unknown environment"),
    ],
)
def test_usage_errors_are_one_line_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "BVA_RUNTIME_DIR": str(tmp_path)}
    out = bva("logs", *args, env=env, timeout=30)
    assert out.returncode == 2, out.stderr
    assert out.stdout == ""
    [line] = out.stderr.splitlines()
    assert message in line and "Traceback" not in out.stderr


# --- on the sandbox ----------------------------------------------------------------------------


def test_merged_text_and_json(sandbox: RunningSandbox) -> None:
    env = sandbox.env
    wait_ready(sandbox, "gateway-service")

    def every_pod_logged() -> list[re.Match[str]]:
        out = bva("logs", "--env", "sandbox", "--tail", "20", env=env)
        assert out.returncode == 0, out.stderr
        lines = parsed(out.stdout)
        return lines if len({m["pod"] for m in lines}) == 12 else []

    lines = wait_until(every_pod_logged, 30, "a line from each of the 12 pods", interval=0.2)
    stamps = [m["time"] for m in lines]
    assert stamps == sorted(stamps), "the merged output went back in time"
    # Without --tail and --since: the last 10 lines of each container (kubectl's default).
    short = parsed(bva("logs", "--env", "sandbox", "auth-service", env=env).stdout)
    assert {m["pod"].rsplit("-", 2)[0] for m in short} == {"auth-service"}
    assert 3 <= len(short) <= 30

    out = bva("logs", "--env", "sandbox", "--json", "user-service", "--tail", "5", env=env)
    assert out.returncode == 0, out.stderr
    docs = [json.loads(ln) for ln in out.stdout.splitlines()]
    assert docs and {d["service"] for d in docs} == {"user-service"}
    assert {d["format"] for d in docs} == {"json"}
    assert set(docs[0]) == {
        "time",
        "ts",
        "pod",
        "container",
        "service",
        "track",
        "level",
        "logger",
        "thread",
        "message",
        "extra",
        "format",
    }
    assert [d["ts"] for d in docs] == sorted(d["ts"] for d in docs)


def test_level_and_grep_filters(sandbox: RunningSandbox) -> None:
    env = sandbox.env
    wait_ready(sandbox, "auth-service")

    def warnings() -> set[str]:
        out = bva("logs", "--env", "sandbox", "--tail", "-1", "--level", "warn", env=env)
        assert out.returncode == 0, out.stderr
        return {m["level"].strip() for m in parsed(out.stdout)}

    levels = wait_until(warnings, 30, "a warning logged", interval=0.2)
    assert levels <= {"WARN", "ERROR", "FATAL"}
    out = bva(
        "logs",
        "--env",
        "sandbox",
        "auth-service",
        "--since",
        "1h",
        "--grep",
        "started",  # smart case: matches "Started AuthServiceApplication"
        "--exclude",
        "Tomcat",
        env=env,
    )
    assert out.returncode == 0, out.stderr
    messages = [m["message"] for m in parsed(out.stdout)]
    assert len([m for m in messages if m.startswith("Started AuthServiceApplication")]) == 3
    assert all("started" in m.lower() and "Tomcat" not in m for m in messages)


def test_previous_logs_of_a_crash_loop(sandbox: RunningSandbox, kubectl: str) -> None:
    env = sandbox.env
    wait_ready(sandbox, "tweet-service")
    subprocess.run(
        [
            kubectl,
            "-n",
            sandbox.namespace,
            "set",
            "image",
            "deployment/tweet-service",
            "tweet-service=bharathva/tweet-service:1.2.0-crash",
        ],
        env=env,
        check=True,
        capture_output=True,
    )

    def crash_looping() -> list[str]:
        pods = json.loads(
            subprocess.run(
                [
                    kubectl,
                    "-n",
                    sandbox.namespace,
                    "get",
                    "pods",
                    "-l",
                    "app=tweet-service",
                    "-o",
                    "json",
                ],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )["items"]
        return [
            p["metadata"]["name"]
            for p in pods
            if any(
                cs.get("restartCount", 0) >= 1 for cs in p["status"].get("containerStatuses", [])
            )
        ]

    crashed = wait_until(crash_looping, 60, "a crash loop", interval=0.3)
    out = bva("logs", "--env", "sandbox", "tweet-service", "--previous", env=env)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    heads = parsed(out.stdout)
    assert {m["pod"] for m in heads} == set(crashed)
    assert heads[0]["message"].startswith("Starting TweetServiceApplication v1.2.0-crash")
    failed = next(i for i, ln in enumerate(lines) if ln.endswith("ERROR Application run failed"))
    trace = lines[failed + 1 :]
    assert trace and all(ln.startswith("    ") for ln in trace)
    assert any(ln.startswith("    Caused by: ") for ln in trace)
    assert any(ln.startswith("        at ") for ln in trace)
    # The healthy pods have no previous instance: said on stderr, not an error.
    assert "no previous instance" in out.stderr


def test_follow_until_ctrl_c(sandbox: RunningSandbox) -> None:
    wait_ready(sandbox, "gateway-service")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", "logs", "--env", "sandbox", "-f", "gateway-service"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=sandbox.env,
    )
    assert proc.stdout is not None
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.extend(proc.stdout or []), daemon=True)
    reader.start()
    wait_until(lambda: len(got) >= 40, 30, "40 lines followed", interval=0.1)
    proc.send_signal(signal.SIGINT)
    started = time.monotonic()
    assert proc.wait(10) == 130
    assert time.monotonic() - started < 3
    reader.join(5)
    err = proc.stderr.read() if proc.stderr else ""
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.startswith("bva: following 3 of 3 container(s) in 3 pod(s) of gateway-service")
    heads = parsed("".join(got))
    assert [m["time"] for m in heads] == sorted(m["time"] for m in heads)
    assert {m["pod"] for m in heads} and all(m["pod"].startswith("gateway-service-") for m in heads)


# --- hostile bytes, end to end -----------------------------------------------------------------

NS = "ns"
POD = "auth-service-7d9f8c6b5-x2k4p"
HOSTILE_LOG = b"".join(
    stamp + b" " + text + b"\n"
    for stamp, text in [
        (
            b"2026-11-26T05:20:47.100000000Z",
            b"2026-11-26T05:20:47.100Z ERROR 1 --- [auth-service] [main] c.b.Auth : "
            b"\x1b[2J\x1b[H wiped \x1b]52;c;cm0gLXJmIH4=\x07 clip [red]red[/red] "
            b"[@click=app.quit]quit[/] \x9b31m raw-c1 \xc2\x9b2J encoded-c1 nul\x00 "
            b"bad\xff\xfeutf8 \xe2\x80\xaeevil",
        ),
        (b"2026-11-26T05:20:47.100000000Z", b"\tat evil\x1bP+q\x1b\\(Evil.java:1)"),
        (b"2026-11-26T05:20:47.100000000Z", b"Caused by: x.Y: \x1b]0;title\x07"),
        (
            b"2026-11-26T05:20:47.200000000Z",
            b'{"message":"json \\u001b[31m \\u009b \\u0000 [bold]b[/bold]","level":"WARN",'
            b'"logger_name":"x\\u001by","thread_name":"t\\u0007","stack_trace":"A: \\u001b[2J\\n'
            b'\\tat z"}',
        ),
        (b"2026-11-26T05:20:47.300000000Z", b"\x1b[?1049h unparsed \x1bc reset \r"),
    ]
)


class _FakeApi(BaseHTTPRequestHandler):
    """Just enough of the Kubernetes API for a non-follow `bva logs`: one pod, one log."""

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == f"/api/v1/namespaces/{NS}/pods":
            body = json.dumps({"kind": "PodList", "metadata": {}, "items": [_pod()]}).encode()
            self._send(200, "application/json", body)
        elif path == f"/api/v1/namespaces/{NS}/pods/{POD}/log":
            self._send(200, "text/plain", HOSTILE_LOG)
        else:
            self._send(404, "application/json", b'{"kind":"Status","code":404}')

    def _send(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _pod() -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "metadata": {
            "name": POD,
            "namespace": NS,
            "uid": "u1",
            "labels": {"app": "auth-service"},
            "creationTimestamp": now,
        },
        "spec": {"containers": [{"name": "auth-service", "image": "example/auth-service:1"}]},
        "status": {
            "phase": "Running",
            "startTime": now,
            "containerStatuses": [
                {
                    "name": "auth-service",
                    "ready": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": now}},
                }
            ],
        },
    }


@pytest.fixture
def fake_api(tmp_path: Path) -> Iterator[Path]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "fake",
                        "cluster": {"server": f"http://127.0.0.1:{server.server_port}"},
                    }
                ],
                "users": [{"name": "fake", "user": {"token": "t"}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
                "current-context": "fake",
            }
        )
    )
    platform = tmp_path / "platform.toml"
    platform.write_text(
        f"""name = "Hostile"
default_environment = "fake"

[environments.fake]
orchestrator = "kubernetes"
namespace = "{NS}"
kubeconfig = "{kubeconfig}"

[[services]]
name = "auth-service"
image = "example/auth-service"
port = 8081
"""
    )
    try:
        yield platform
    finally:
        server.shutdown()


# C0 except the newline that ends each output line, DEL, C1 (as UTF-8), bidi overrides.
UNSAFE_OUT = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


@pytest.mark.parametrize("as_json", [False, True])
def test_hostile_log_bytes_reach_stdout_inert(
    fake_api: Path, tmp_path: Path, as_json: bool
) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "BVA_RUNTIME_DIR": str(tmp_path)}
    args = ["--config", str(fake_api), "logs", "--tail", "-1"] + (["--json"] if as_json else [])
    out = subprocess.run(
        [sys.executable, "-m", "tui", *args], capture_output=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr.decode()
    text = out.stdout.decode("utf-8")  # valid UTF-8 whatever came in
    assert UNSAFE_OUT.search(text) is None, UNSAFE_OUT.findall(text)
    if as_json:
        docs = [json.loads(ln) for ln in text.splitlines()]
        assert [d["format"] for d in docs] == ["plain", "json", "unparsed"]
        values = [v for d in docs for v in (d["message"], d["logger"], d["thread"], *d["extra"])]
        assert all(UNSAFE_OUT.search(v) is None for v in values)
        assert docs[1]["level"] == "WARN" and docs[1]["logger"] == "x\\x1by"
        return
    lines = text.splitlines()
    assert len(lines) == 7, lines
    first = lines[0]
    assert first.startswith(f"2026-11-26T05:20:47.100Z {POD} ERROR \\x1b[2J\\x1b[H wiped")
    # Markup stays literal text; escapes are visible, not executed.
    for shown in (
        "\\x1b]52;c;cm0gLXJmIH4=\\x07",
        "[red]red[/red]",
        "[@click=app.quit]quit[/]",
        "\ufffd31m raw-c1",  # a lone 0x9b byte is invalid UTF-8
        "\\x9b2J encoded-c1",
        "nul\\x00",
        "bad\ufffd\ufffdutf8",
        "\\u202eevil",
    ):
        assert shown in first, shown
    assert lines[1] == "        at evil\\x1bP+q\\x1b\\(Evil.java:1)"
    assert lines[2] == "    Caused by: x.Y: \\x1b]0;title\\x07"
    assert "json \\x1b[31m \\x9b \\x00 [bold]b[/bold]" in lines[3]
    assert lines[4:6] == ["    A: \\x1b[2J", "        at z"]
    # The CR of a CRLF line ending is dropped, not shown.
    assert lines[-1].endswith(" -     \\x1b[?1049h unparsed \\x1bc reset ")

"""Log lines fed from files: `bva sandbox --log-dir DIR` and the LogFeeds behind it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from backends.sandbox.logfeed import LogFeeds
from backends.sandbox.logs import LogBook
from tests.sandbox.test_logs import Clock, start
from tests.support.sandbox_proc import start_sandbox
from tests.support.waiting import wait_until

PODS = ("auth-service-a", "auth-service-b", "auth-service-c")


def _book() -> tuple[LogBook, Clock]:
    clock = Clock()
    book = LogBook(seed=1, clock=clock)
    for pod in PODS:
        start(book, pod)
    start(book, "user-service-a", service="user-service")
    return book, clock


def _app_lines(book: LogBook, pod: str, container: str = "auth-service") -> list[str]:
    return [line for line in book.read(pod, container) if line.startswith("feed ")]


def test_appended_lines_are_spread_over_running_pods_in_turn(tmp_path: Path) -> None:
    book, _ = _book()
    feeds = LogFeeds(tmp_path, ["auth-service", "user-service"], book)
    path = tmp_path / "auth-service.log"
    path.write_text("written before the feed saw the file\n")
    feeds.poll()  # first sight: like tail -f, only what comes after counts
    assert all(not _app_lines(book, pod) for pod in PODS)
    with path.open("a") as fh:
        fh.write("".join(f"feed {i}\n" for i in range(7)))
        fh.write("feed 7 (no newline yet)")
    feeds.poll()
    got = {pod: _app_lines(book, pod) for pod in PODS}
    assert got == {
        "auth-service-a": ["feed 0", "feed 3", "feed 6"],
        "auth-service-b": ["feed 1", "feed 4"],
        "auth-service-c": ["feed 2", "feed 5"],
    }
    with path.open("a") as fh:
        fh.write(" done\nfeed 8\n")
    feeds.poll()
    # The turn carries on where it stopped, and a line split across polls arrives whole.
    assert _app_lines(book, "auth-service-b")[-1] == "feed 7 (no newline yet) done"
    assert _app_lines(book, "auth-service-c")[-1] == "feed 8"
    assert feeds.fed == 9


def test_fed_service_stops_generated_chatter_others_keep_it(tmp_path: Path) -> None:
    book, clock = _book()
    feeds = LogFeeds(tmp_path, ["auth-service", "user-service"], book)
    (tmp_path / "auth-service.log").write_text("")
    feeds.poll()
    before = {pod: len(book.read(pod, "auth-service")) for pod in PODS}
    other = len(book.read("user-service-a", "user-service"))
    for _ in range(40):
        clock.now += 0.25
        book.tick()
    assert {pod: len(book.read(pod, "auth-service")) for pod in PODS} == before
    assert len(book.read("user-service-a", "user-service")) > other


def test_truncated_file_is_read_from_its_start(tmp_path: Path) -> None:
    book, _ = _book()
    feeds = LogFeeds(tmp_path, ["auth-service"], book)
    path = tmp_path / "auth-service.log"
    path.write_text("old line one\nold line two\n")
    feeds.poll()
    path.write_text("feed new\n")
    feeds.poll()
    assert [line for pod in PODS for line in _app_lines(book, pod)] == ["feed new"]


def test_bva_sandbox_log_dir_serves_fed_lines_to_kubectl(tmp_path: Path, kubectl: str) -> None:
    feed_dir = tmp_path / "feed"
    feed_dir.mkdir()
    sandbox = start_sandbox(tmp_path / "sb", log_dir=feed_dir)
    try:
        path = feed_dir / "auth-service.log"
        path.write_text("")

        def run(*args: str) -> str:
            return subprocess.run(
                [kubectl, *args],
                env=sandbox.env,
                capture_output=True,
                text=True,
                check=True,
                timeout=30,
            ).stdout

        pods_json = run("get", "pods", "-l", "app=auth-service", "-o", "json")
        pods = [p["metadata"]["name"] for p in json.loads(pods_json)["items"]]
        assert len(pods) == 3

        def tailing() -> bool:
            """A marker appended shows up in a pod's log: the feed has the file (lines there
            before it first looked are never fed, like tail -f)."""
            with path.open("a") as fh:
                fh.write("feed marker\n")
            return any("feed marker" in run("logs", pod) for pod in pods)

        wait_until(tailing, 10, "the feed to tail the file", interval=0.05)
        sent = [f"feed line {i:04d} \x1b[31mred\x1b[0m" for i in range(300)]
        with path.open("a") as fh:
            fh.write("".join(line + "\n" for line in sent))

        def fed() -> dict[str, list[str]]:
            got = {pod: run("logs", pod).splitlines() for pod in pods}
            return {
                pod: [x for x in lines if x.startswith("feed line")] for pod, lines in got.items()
            }

        def all_fed() -> dict[str, list[str]] | None:
            got = fed()
            return got if sum(map(len, got.values())) == len(sent) else None

        got = wait_until(
            all_fed,
            10,
            "every fed line in the pods' logs",
            interval=0.2,
            detail=lambda: f"{sum(map(len, fed().values()))} of {len(sent)}",
        )
        assert sorted(x for lines in got.values() for x in lines) == sent
        assert sorted(len(lines) for lines in got.values()) == [100, 100, 100]
    finally:
        sandbox.stop()

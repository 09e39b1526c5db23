"""Maintenance windows ("Mon-Fri 09:00-17:00", "daily 22:00-02:00", all UTC): is now inside
one, and when does the next one open."""

from __future__ import annotations

from datetime import datetime, timedelta

from backends.checklist.models import Finding, ItemState

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _parse(window: str) -> tuple[set[int], int, int]:
    days_text, hours = window.split(" ", 1)
    start_text, end_text = hours.split("-")
    if days_text == "daily":
        days = set(range(7))
    elif "-" in days_text:
        first, last = (DAYS.index(d) for d in days_text.split("-"))
        days = {(first + i) % 7 for i in range((last - first) % 7 + 1)}
    else:
        days = {DAYS.index(days_text)}

    def minutes(t: str) -> int:
        return int(t[:2]) * 60 + int(t[3:])

    return days, minutes(start_text), minutes(end_text)


def inside(window: str, now: datetime) -> bool:
    days, start, end = _parse(window)
    t = now.hour * 60 + now.minute
    today, yesterday = now.weekday(), (now.weekday() - 1) % 7
    if start < end:
        return today in days and start <= t < end
    # Past midnight: it opened on a listed day and runs into the next one.
    return (today in days and t >= start) or (yesterday in days and t < end)


def next_opening(windows: list[str], now: datetime) -> datetime | None:
    base = now.replace(second=0, microsecond=0)
    for step in range(1, 8 * 24 * 60 + 1):  # a week of minutes: every window opens in it
        t = base + timedelta(minutes=step)
        if any(inside(w, t) for w in windows):
            return t
    return None


def window_finding(windows: list[str], now: datetime) -> Finding:
    if not windows:
        return Finding(ItemState.PASS, "no maintenance window set for this environment: any time")
    open_now = [w for w in windows if inside(w, now)]
    if open_now:
        return Finding(ItemState.PASS, f"inside {open_now[0]} UTC")
    nxt = next_opening(windows, now)
    when = f"; next opens {DAYS[nxt.weekday()]} {nxt:%H:%M} UTC" if nxt else ""
    return Finding(
        ItemState.FAIL,
        f"outside the maintenance window ({', '.join(windows)} UTC){when}; a release now "
        "needs a typed reason",
    )

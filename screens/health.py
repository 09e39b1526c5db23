"""The Health screen: every service's health, pods, version and rollout at a glance, live,
with the selected service's pods, Actuator components and events below.

Over 500 lines on purpose: the summary table and the detail tables below it are fed by the same
workers and messages and keep the same selection; the row formatting lives in widgets.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Input, Static, TabbedContent, TabPane

from backends.errors import BvaError
from backends.health.models import ProbeStatus
from backends.models import KubeEvent, Pod
from backends.sanitize import sanitize_text
from backends.status.monitor import HealthMonitor, HealthPicture, ServiceRow
from screens.base import BvaScreen
from widgets.alerts_strip import AlertsStrip
from widgets.app_header import AppHeader
from widgets.badges import age_text, health_badge, rollout_badge, sparkline
from widgets.db_detail import DatabaseDetail
from widgets.db_table import DatabaseTable, flyway_line, state_badge
from widgets.steady import SteadyStatic

if TYPE_CHECKING:
    pass

COLUMNS = (
    ("service", "SERVICE"),
    ("health", "HEALTH"),
    ("pods", "PODS"),
    ("image", "IMAGE"),
    ("rollout", "ROLLOUT"),
    ("latency", "LATENCY"),
    ("age", "AGE"),
)
# Fixed widths per terminal size (cell padding 1 on each side comes on top), so columns do
# not jitter as values change and everything fits at 80 columns.
WIDTHS = {
    "narrow": (17, 9, 6, 8, 13, 10, 3),
    "wide": (22, 11, 9, 16, 24, 16, 5),
}
SPARK_WIDTH = {"narrow": 3, "wide": 12}
_POD_BASE = (
    ("pod", "POD"),
    ("status", "STATUS"),
    ("ready", "READY"),
    ("restarts", "RESTARTS"),
    ("age", "AGE"),
    ("track", "TRACK"),
)
POD_COLUMNS = {"narrow": _POD_BASE, "wide": (*_POD_BASE, ("node", "NODE"))}
SORTS = ("order", "name", "health", "latency", "rollout")
# Pod changes come in bursts (a rollout): the events are read once the burst is over.
EVENTS_SETTLE_S = 0.3


class HealthChanged(Message):
    """The monitor took in new data: one redraw covers every change still queued."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, HealthChanged)


class PodsChanged(Message):
    """The selected service's pods as the watch holds them now."""

    def __init__(self, service: str, pods: list[Pod]) -> None:
        super().__init__()
        self.service, self.pods = service, pods

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, PodsChanged) and message.service == self.service


class EventsLoaded(Message):
    def __init__(self, service: str, events: tuple[KubeEvent, ...]) -> None:
        super().__init__()
        self.service, self.events = service, events


class DetailFailed(Message):
    def __init__(self, service: str, text: str) -> None:
        super().__init__()
        self.service, self.text = service, text


class HealthScreen(BvaScreen):
    CSS_PATH = "health.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        # Priority, so letters typed right behind it (a paste, keys sent in one write) go to
        # the filter it opens, not to the bindings below; text while the filter has focus.
        Binding("slash", "filter", "Filter", id="health.filter", priority=True),
        Binding("s", "cycle_sort", "Sort", id="health.sort"),
        Binding("S", "reverse_sort", "Reverse sort", show=False, id="health.reverse"),
        # In the help and the palette; the footer keeps its room for the screen keys.
        Binding("r", "refresh", "Refresh", show=False, id="health.refresh"),
        # Priority: the table would otherwise take enter as "select row" and keep it.
        Binding("enter", "toggle_detail", "Detail", id="health.detail", priority=True),
        # enter in the filter box: done at once, so keys behind it are bindings again
        Binding("enter", "filter_done", show=False, id="health.filter_done", priority=True),
        Binding("p", "detail_tab('pods')", "Pods", show=False, id="health.pods"),
        Binding("c", "detail_tab('components')", "Components", show=False, id="health.components"),
        Binding("e", "detail_tab('events')", "Events", show=False, id="health.events"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="health.clear"),
        Binding("d", "toggle_database", "DB", id="health.database"),
        Binding("a", "db_tab('activity')", "Activity", show=False, id="health.db_activity"),
        Binding("l", "db_tab('replication')", "Replication", show=False, id="health.db_lag"),
        Binding("m", "db_tab('migrations')", "Migrations", show=False, id="health.db_flyway"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._monitor: HealthMonitor | None = None
        self._rows: dict[str, ServiceRow] = {}
        self._cells: dict[str, tuple[Any, ...]] = {}
        self._order: dict[str, int] = {}
        self._filter = ""
        self._sort = "order"
        self._reverse = False
        self._drawn_version = -1
        self._selected: str | None = None
        self._probe_timer: Timer | None = None
        self._active = True
        self.probe_count = 0  # sweeps done; tests read it to prove polling stops when hidden
        self.detail_loaded: str | None = None  # the service whose pods/events are drawn
        self._picture: HealthPicture | None = None
        self._layout = ""
        self._pods_shown: list[Pod] = []
        self._pods_for: str | None = None
        self._events_for: str | None = None
        self._events_shown: tuple[tuple[Any, ...], ...] = ()
        self._components_shown: list[tuple[Any, ...]] | None = None
        self._has_database = False
        self._db_timer: Timer | None = None
        self._db_selected: str | None = None
        self.db_reads = 0  # database refreshes done; tests read it like probe_count

    def compose(self) -> ComposeResult:
        yield AppHeader()
        yield AlertsStrip("… waiting for data", id="alerts")
        yield Input(placeholder="filter services…  (enter to keep, esc to clear)", id="filter")
        yield DataTable(id="services", cursor_type="row")
        yield DatabaseTable(id="databases")
        yield SteadyStatic("", id="flyway-line")
        with Vertical(id="detail"):
            yield SteadyStatic("", id="detail-title")
            with TabbedContent(id="detail-tabs", initial="pods"):
                with TabPane("Pods", id="pods"):
                    yield DataTable(id="pods-table", cursor_type="row")
                with TabPane("Components", id="components"):
                    yield DataTable(id="components-table", cursor_type="row")
                with TabPane("Events", id="events"):
                    yield DataTable(id="events-table", cursor_type="row")
            yield DatabaseDetail(id="db-detail")
        yield self.compose_footer()

    def on_mount(self) -> None:
        self.init_header()
        self.query_one("#filter", Input).display = False
        for wid in ("#databases", "#flyway-line", "#db-detail"):
            self.query_one(wid).display = False
        comps: DataTable[Any] = self.query_one("#components-table", DataTable)
        for key, label in (("name", "COMPONENT"), ("status", "STATUS"), ("details", "DETAILS")):
            comps.add_column(label, key=key)
        events: DataTable[Any] = self.query_one("#events-table", DataTable)
        for key, label in (
            ("age", "AGE"),
            ("type", "TYPE"),
            ("reason", "REASON"),
            ("object", "OBJECT"),
            ("message", "MESSAGE"),
        ):
            events.add_column(label, key=key)
        self._apply_layout(self.size.width)
        self.query_one("#services", DataTable).focus()
        # Ages move even when no data changed; nothing else redraws without a message.
        self._ages = self.set_interval(2.0, self._redraw)
        self._start()

    @work(exclusive=True, group="health-start")
    async def _start(self) -> None:
        header = self.query_one(AppHeader)
        try:
            platform = await self.bva.platform()
        except BvaError as exc:
            header.connected = False
            header.connection = sanitize_text(str(exc), 80)
            self.query_one(AlertsStrip).update(
                Text(f"✖ {sanitize_text(str(exc))}", style="bold red")
            )
            return
        header.platform = platform.name
        header.environment = platform.env_name
        header.production = platform.production
        header.read_only = platform.read_only
        self._monitor = HealthMonitor(
            platform.name,
            platform.env_name,
            platform.services(),
            platform.config.thresholds,
            orchestrator=platform.orchestrator.kind,
        )
        self._order = {name: i for i, (name, _) in enumerate(platform.services())}
        self._watch_workloads()
        self._probe()
        if platform.database is not None:
            self._has_database = True
            self.query_one("#databases").display = True
            self.query_one("#flyway-line").display = True
            self.refresh_bindings()  # the footer's `d DB` exists from now on
            self._poll_database()

    # -- data sources -----------------------------------------------------------------------
    @work(exclusive=True, group="health-watch")
    async def _watch_workloads(self) -> None:
        platform = await self.bva.platform()
        async for event in platform.orchestrator.watch_workloads():
            if self._monitor is not None:
                self._monitor.apply_workloads(event, self.bva.clock())
                self.post_message(HealthChanged())

    @work(exclusive=True, group="health-probe")
    async def _probe(self) -> None:
        platform = await self.bva.platform()
        results = await platform.health.sweep(platform.health_targets())
        self.probe_count += 1
        if self._monitor is not None:
            self._monitor.apply_health(results, self.bva.clock())
            self.post_message(HealthChanged())
        # Re-arm only after the sweep finished, and only while the screen is shown. While a
        # service is not UP (a start-up, an incident) look again sooner, to see it recover.
        delay = self.bva.settings.poll_interval
        if any(r.status is not ProbeStatus.UP for r in results):
            delay = min(delay, self.bva.settings.recheck_interval)
        if self._active:
            self._probe_timer = self.set_timer(delay, self._probe)

    @work(exclusive=True, group="health-db")
    async def _poll_database(self) -> None:
        platform = await self.bva.platform()
        if platform.database is None:
            return
        # Never raises for a server that is gone: that is a DOWN row with its data's age.
        picture = await platform.database.refresh()
        self.db_reads += 1
        if self._monitor is not None:
            self._monitor.apply_database(picture)
            self.post_message(HealthChanged())
        if self._active:
            self._db_timer = self.set_timer(self.bva.settings.db_interval, self._poll_database)

    def on_screen_suspend(self) -> None:
        self._active = False
        self._ages.pause()
        if self._probe_timer is not None:
            self._probe_timer.stop()
            self._probe_timer = None
        if self._db_timer is not None:
            self._db_timer.stop()
            self._db_timer = None
        # The detail follows the selected service only while it can be seen.
        self.workers.cancel_group(self, "health-detail")
        self.workers.cancel_group(self, "health-events")
        self.detail_loaded = None

    def on_screen_resume(self) -> None:
        if not self._active:
            self._active = True
            self._ages.resume()
            if self._monitor is not None:
                self._probe()
                if self._has_database:
                    self._poll_database()
                self._redraw()
            if self._selected is not None:
                self._watch_detail(self._selected)

    # -- drawing ----------------------------------------------------------------------------
    def on_health_changed(self, message: HealthChanged) -> None:
        if self._monitor is not None and self._monitor.version != self._drawn_version:
            self._redraw()

    def on_pods_changed(self, message: PodsChanged) -> None:
        if message.service == self._selected:
            self._draw_pods(message.pods)
            self._pods_for = message.service
            self._detail_done()

    def on_events_loaded(self, message: EventsLoaded) -> None:
        if message.service == self._selected:
            self._draw_events(list(message.events))
            self._events_for = message.service
            self._detail_done()

    def on_detail_failed(self, message: DetailFailed) -> None:
        if message.service == self._selected:
            self.query_one("#detail-title", Static).update(
                Text(f" {message.service}: {message.text}", style="red")
            )
            self.detail_loaded = message.service  # what there is to show is the failure

    def _detail_done(self) -> None:
        if self._pods_for == self._selected and self._events_for == self._selected:
            self.detail_loaded = self._selected

    def _redraw(self) -> None:
        # A hidden screen is not drawn: its table work would only delay the keys of the one
        # on show (a log flood's, say). It catches up when it is shown again.
        if self._monitor is None or not self._active:
            return
        self._drawn_version = self._monitor.version
        now = self.bva.clock()
        picture = self._monitor.picture(now)
        self._picture = picture
        self._rows = {r.service: r for r in picture.rows}
        self._draw_header(picture, now)
        self.query_one(AlertsStrip).show(picture.alerts)
        self._draw_table(picture, now)
        self._draw_database(picture, now)
        self._draw_detail_title()

    def _draw_database(self, picture: HealthPicture, now: float) -> None:
        db = picture.database
        if db is None:
            return
        table = self.query_one(DatabaseTable)
        table.show(db, now)
        self.query_one("#flyway-line", Static).update(flyway_line(db))
        if self._db_selected is None:
            self._db_selected = table.selected_server
        if self._showing_database():
            server = next((s for s in db.servers if s.name == self._db_selected), None)
            if server is not None:
                self.query_one(DatabaseDetail).show(server)

    def _showing_database(self) -> bool:
        return self.query_one("#db-detail").display is True

    def _show_detail_of(self, kind: str) -> None:
        """The detail below follows the table that has the focus: a service or a server."""
        database = kind == "database" and self._has_database
        self.query_one("#detail-tabs").display = not database
        self.query_one("#db-detail").display = database
        self._draw_detail_title()
        if database and self._picture is not None:
            self._draw_database(self._picture, self.bva.clock())

    def _draw_header(self, picture: HealthPicture, now: float) -> None:
        header = self.query_one(AppHeader)
        down = [s for s in picture.sources if not s.ok]
        if down:
            src = down[0]
            age = f", data {age_text(now - src.last_good)} old" if src.last_good else ""
            header.connected = False
            header.connection = f"{src.name} unreachable{age}"
        else:
            header.connected = True
            header.connection = f"live · {self.bva.platform_target}"

    def on_resize(self) -> None:
        self._apply_layout(self.size.width)

    def _apply_layout(self, width: int) -> None:
        layout = "wide" if width >= 110 else "narrow"
        if layout == self._layout:
            return
        # Only a change of terminal size rebuilds the columns; data updates go cell by cell.
        self._layout = layout
        table: DataTable[Any] = self.query_one("#services", DataTable)
        table.clear(columns=True)
        for (key, label), width_ in zip(COLUMNS, WIDTHS[layout], strict=True):
            table.add_column(label, width=width_, key=key)
        pods: DataTable[Any] = self.query_one("#pods-table", DataTable)
        pods.clear(columns=True)
        for key, label in POD_COLUMNS[layout]:
            pods.add_column(label, key=key)
        self._draw_pods(list(self._pods_shown))
        self.query_one(DatabaseTable).set_layout(layout)
        self.query_one(DatabaseDetail).layout_name = layout
        self._cells.clear()
        self._redraw()

    def _cells_for(self, r: ServiceRow, now: float) -> tuple[Any, ...]:
        pods = f"{r.ready}/{r.desired}"
        if r.canary_desired is not None:
            pods += f"+{r.canary_ready}c"
        image = f"{sanitize_text(r.image_tag, 14)} r{r.revision}" if r.revision else "—"
        latency = f"{r.latency_ms:>4.0f}ms" if r.latency_ms is not None else "   —"
        trend = sparkline(r.latency_history, SPARK_WIDTH[self._layout or "narrow"])
        age = age_text(now - r.last_good) if r.last_good else "—"
        if r.last_good and now - r.last_good < 2 * self.bva.settings.poll_interval:
            # As fresh as the sweeps make it: a steady word, not a count of seconds that
            # redraws the table every two seconds when nothing changed.
            age = "now"
        return (
            r.service,
            health_badge(r.health),
            pods,
            image,
            rollout_badge(r.rollout, r.rollout_text),
            f"{latency} {trend}",
            age,
        )

    def _visible(self, r: ServiceRow) -> bool:
        return not self._filter or self._filter.lower() in r.service.lower()

    def _draw_table(self, picture: HealthPicture, now: float) -> None:
        table: DataTable[Any] = self.query_one("#services", DataTable)
        wanted = [r for r in picture.rows if self._visible(r)]
        keys = {r.service for r in wanted}
        changed_order = False
        with self.app.batch_update():
            for key in [k for k in self._cells if k not in keys]:
                table.remove_row(key)
                del self._cells[key]
            for r in wanted:
                cells = self._cells_for(r, now)
                old = self._cells.get(r.service)
                if old is None:
                    table.add_row(*cells, key=r.service)
                    changed_order = True
                else:
                    for (col, _), new, prev in zip(COLUMNS, cells, old, strict=True):
                        if new != prev:
                            table.update_cell(r.service, col, new)
                            changed_order = changed_order or col in ("health", "latency", "rollout")
                self._cells[r.service] = cells
            if changed_order:
                self._apply_sort(table)
        if self._selected is None and table.row_count:
            self._select_row(table)

    def _sort_key(self, service: str) -> Any:
        r = self._rows.get(service)
        if r is None:
            return (0,)
        if self._sort == "name":
            return r.service
        if self._sort == "health":
            return (r.health.severity, not r.rollout_failed, r.service)
        if self._sort == "latency":
            return -(r.latency_ms or -1.0)
        if self._sort == "rollout":
            return (r.rollout.state.value if r.rollout else "~", r.service)
        return self._order.get(service, 0)

    def _apply_sort(self, table: DataTable[Any]) -> None:
        table.sort("service", key=self._sort_key, reverse=self._reverse)

    def _select_row(self, table: DataTable[Any]) -> None:
        if not table.row_count:
            return
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        self._set_selected(str(row_key.value))

    def _set_selected(self, service: str) -> None:
        if service != self._selected:
            self._selected = service
            self._draw_detail_title()
            self.detail_loaded = None
            self._watch_detail(service)

    def _draw_detail_title(self) -> None:
        title = self.query_one("#detail-title", Static)
        if self._showing_database():
            title.update(self._server_title())
            return
        r = self._rows.get(self._selected or "")
        if r is None:
            title.update("")
            return
        text = Text(f" {r.service} ", style="bold reverse")
        text.append(" ")
        text.append_text(health_badge(r.health))
        if r.health_detail:
            text.append(f" — {sanitize_text(r.health_detail, 70)}", style="red")
        if r.rollout is not None and not r.rollout.done:
            text.append(f"  {sanitize_text(r.rollout.message, 90)}")
        title.update(text)
        self._draw_components(r)

    def _server_title(self) -> Text:
        db = self._picture.database if self._picture is not None else None
        server = next((s for s in db.servers if s.name == self._db_selected), None) if db else None
        if server is None:
            return Text("")
        text = Text(f" {server.name} ", style="bold reverse")
        text.append(" ")
        text.append_text(state_badge(server.state))
        text.append(f" {server.role.value} {server.target}")
        if server.version:
            text.append(f" · PostgreSQL {server.version}", style="dim")
        if server.problems:
            text.append(f" — {sanitize_text(server.problems[0].text, 70)}", style="red")
        elif server.missing:
            text.append(f" — {sanitize_text(server.missing[0], 70)}", style="yellow")
        return text

    def _draw_components(self, r: ServiceRow) -> None:
        rows: list[tuple[Any, ...]] = []
        for comp in r.components:
            details = ", ".join(f"{k}={v}" for k, v in comp.details)
            status = (
                ProbeStatus(comp.status)
                if comp.status in ProbeStatus.__members__
                else ProbeStatus.UNKNOWN
            )
            rows.append(
                (sanitize_text(comp.name, 30), health_badge(status), sanitize_text(details, 120))
            )
        for probe in r.probes:
            if probe.status is not ProbeStatus.UP:
                rows.append(
                    (
                        sanitize_text(probe.url, 50),
                        health_badge(probe.status),
                        sanitize_text(probe.detail, 120),
                    )
                )
        # Rebuilt only when it differs: a rebuild is a new layout, and this runs on every
        # redraw of the screen, the two-second age tick included.
        if rows == self._components_shown:
            return
        self._components_shown = rows
        table: DataTable[Any] = self.query_one("#components-table", DataTable)
        with self.app.batch_update():
            table.clear()
            for row in rows:
                table.add_row(*row)

    @work(exclusive=True, group="health-detail")
    async def _watch_detail(self, service: str) -> None:
        """The selected service's pods from the orchestrator's watch; its events are read
        again when the pods change, not on a timer."""
        platform = await self.bva.platform()
        deployment = dict(platform.services()).get(service, service)
        pods: dict[str, Pod] = {}
        stream = platform.orchestrator.watch_instances(service)
        async with contextlib.aclosing(stream) as events:
            async for event in events:
                if self._selected != service:
                    return
                if event.kind == "ERROR":
                    self.post_message(DetailFailed(service, sanitize_text(event.message, 100)))
                    continue
                if event.kind == "RESYNC":
                    pods = {p.name: p for p in event.items}
                elif event.obj is not None and event.kind == "DELETED":
                    pods.pop(event.obj.name, None)
                elif event.obj is not None:
                    pods[event.obj.name] = event.obj
                self.post_message(PodsChanged(service, list(pods.values())))
                self._load_events(service, deployment, sorted(pods))

    @work(exclusive=True, group="health-events")
    async def _load_events(self, service: str, deployment: str, pods: list[str]) -> None:
        await asyncio.sleep(EVENTS_SETTLE_S)
        platform = await self.bva.platform()
        batches = await asyncio.gather(
            platform.orchestrator.events("Deployment", deployment, 20),
            *(platform.orchestrator.events("Pod", name, 10) for name in pods[:10]),
            return_exceptions=True,
        )
        failed = next((b for b in batches if isinstance(b, BvaError)), None)
        if failed is not None:
            self.post_message(DetailFailed(service, sanitize_text(str(failed), 100)))
        events = tuple(e for b in batches if isinstance(b, list) for e in b)
        self.post_message(EventsLoaded(service, events))

    def _pod_cells(self, p: Pod, now: float) -> tuple[Any, ...]:
        wide = self._layout == "wide"
        bad = not p.is_ready or p.status not in ("Running",)
        status = Text(
            ("✖ " if bad else "✔ ") + sanitize_text(p.status, 24),
            style="red" if bad else "green",
        )
        restarts = str(p.restarts)
        if p.last_termination_reason:
            restarts += f" ({sanitize_text(p.last_termination_reason, 12)})"
        # The service is in the title above; the pod's own suffix is what tells them apart.
        name = p.name if wide else p.name.removeprefix(f"{p.service}-")
        cells = [
            sanitize_text(name, 48),
            status,
            p.ready,
            restarts,
            age_text(now - p.created) if p.created else "—",
            p.track,
        ]
        if wide:
            cells.append(sanitize_text(p.node or "—", 20))
        return tuple(cells)

    def _draw_pods(self, pods: list[Pod]) -> None:
        """Rows change cell by cell; only a pod that comes or goes rebuilds the order."""
        table: DataTable[Any] = self.query_one("#pods-table", DataTable)
        now = self.bva.clock()
        ordered = sorted(pods, key=lambda p: (p.track, p.name))
        self._pods_shown = ordered
        rows = {p.name: self._pod_cells(p, now) for p in ordered}
        columns = [c.key for c in table.ordered_columns]
        with self.app.batch_update():
            if list(table.rows) != list(rows) or len(columns) != len(
                next(iter(rows.values()), columns)
            ):
                table.clear()
                for name, cells in rows.items():
                    table.add_row(*cells, key=name)
                return
            for name, cells in rows.items():
                for col, new in zip(columns, cells, strict=True):
                    if table.get_cell(name, col) != new:
                        table.update_cell(name, col, new)

    def _draw_events(self, events: list[KubeEvent]) -> None:
        table: DataTable[Any] = self.query_one("#events-table", DataTable)
        now = self.bva.clock()
        events.sort(key=lambda e: e.last_timestamp or 0.0, reverse=True)
        rows = tuple(
            (
                age_text(now - e.last_timestamp) if e.last_timestamp else "—",
                Text(e.type, style="bold red" if e.type == "Warning" else ""),
                sanitize_text(e.reason, 24),
                sanitize_text(f"{e.object_kind.lower()}/{e.object_name}", 48),
                sanitize_text(e.message, 200),
            )
            for e in events[:50]
        )
        if rows == self._events_shown:
            return
        self._events_shown = rows
        with self.app.batch_update():
            table.clear()
            for row in rows:
                table.add_row(*row)

    # -- actions ----------------------------------------------------------------------------
    @on(DataTable.RowHighlighted, "#services")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self._set_selected(str(event.row_key.value))

    @on(DataTable.RowHighlighted, "#databases")
    def _server_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None and event.row_key.value != self._db_selected:
            self._db_selected = str(event.row_key.value)
            if self._showing_database():
                self._show_detail_of("database")

    def on_descendant_focus(self, event: Any) -> None:
        focused = self.focused
        if isinstance(focused, DatabaseTable):
            self._show_detail_of("database")
        elif focused is not None and focused.id == "services":
            self._show_detail_of("service")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # enter and / belong to the filter box while it is being typed in
        typing = isinstance(self.focused, Input)
        if action == "filter_done":
            return typing
        if action in ("toggle_database", "db_tab"):
            return self._has_database and not typing
        return not (action in ("toggle_detail", "filter") and typing)

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        # Now, not on the next turn as focus() would: keys already queued behind this one
        # go to whatever has focus when the App takes them.
        self.set_focus(box)

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._filter = event.value.strip()
        self._redraw()

    def action_filter_done(self) -> None:
        box = self.query_one("#filter", Input)
        # Focus leaves the box now, so keys typed behind enter are bindings again; the
        # keys before it may still wait in the box's queue (one burst): read after them.
        self.set_focus(self.query_one("#services", DataTable))
        box.call_later(self._filter_settled, box)

    def _filter_settled(self, box: Input) -> None:
        self._filter = box.value.strip()
        box.display = bool(self._filter)
        self._redraw()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if self._filter or box.display:
            box.value = ""
            self._filter = ""
            box.display = False
            self.set_focus(self.query_one("#services", DataTable))
            self._redraw()

    def action_cycle_sort(self) -> None:
        self._sort = SORTS[(SORTS.index(self._sort) + 1) % len(SORTS)]
        self._apply_sort(self.query_one("#services", DataTable))
        self.notify(f"sorted by {self._sort}{' (reversed)' if self._reverse else ''}", timeout=2)

    def action_reverse_sort(self) -> None:
        self._reverse = not self._reverse
        self._apply_sort(self.query_one("#services", DataTable))

    def action_refresh(self) -> None:
        if self._monitor is not None:
            if self._probe_timer is not None:
                self._probe_timer.stop()
            self._probe()

    def action_toggle_detail(self) -> None:
        detail = self.query_one("#detail")
        detail.toggle_class("-maximized")
        big = detail.has_class("-maximized")
        for wid in ("#services", "#databases", "#flyway-line"):
            self.query_one(wid).set_class(big, "-collapsed")

    def action_detail_tab(self, tab: str) -> None:
        if self._showing_database():
            self.set_focus(self.query_one("#services", DataTable))
            self._show_detail_of("service")
        self.query_one("#detail-tabs", TabbedContent).active = tab

    def action_toggle_database(self) -> None:
        """Focus moves between the services and the database servers; the detail follows."""
        to_db = not isinstance(self.focused, DatabaseTable)
        target = self.query_one(DatabaseTable) if to_db else self.query_one("#services")
        self.set_focus(target)
        self._show_detail_of("database" if to_db else "service")

    def action_db_tab(self, tab: str) -> None:
        if not self._showing_database():
            self.action_toggle_database()
        self.query_one(DatabaseDetail).show_tab(tab)

    @property
    def picture(self) -> HealthPicture | None:
        return self._picture

    @property
    def settled(self) -> bool:
        """Every source answered once and the screen shows it (for tests and benchmarks)."""
        return (
            self._monitor is not None
            and self.probe_count > 0
            and self._picture is not None
            and self._drawn_version == self._monitor.version
            and self.detail_loaded == self._selected
            and (not self._has_database or self.db_reads > 0)
        )

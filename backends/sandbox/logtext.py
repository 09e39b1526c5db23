"""What the simulated Spring Boot services print, and how their logging layouts render it.

Two layouts are produced: Spring Boot 3's default console pattern and logstash-logback-encoder
JSON. Message vocabularies are picked per service from keywords in the service name, so any
platform file of the same shape gets plausible text without configuration.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Literal

from backends.sandbox.view import LogFormat

Level = Literal["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]
Web = Literal["tomcat", "netty"]

LEVEL_VALUES: dict[str, int] = {
    "TRACE": 5000,
    "DEBUG": 10000,
    "INFO": 20000,
    "WARN": 30000,
    "ERROR": 40000,
}
PACKAGE_ROOT = "com.bharathva"
JAVA_VERSION = "17.0.10"
TOMCAT_VERSION = "10.1.19"
HIBERNATE_VERSION = "6.4.4.Final"

DISPATCHER = "org.apache.catalina.core.ContainerBase.[Tomcat].[localhost].[/].[dispatcherServlet]"
SQL_HELPER = "org.hibernate.engine.jdbc.spi.SqlExceptionHelper"


@dataclass(frozen=True, slots=True)
class LogEvent:
    level: Level
    logger: str
    thread: str
    message: str
    trace: tuple[str, ...] = ()


# --- layouts -----------------------------------------------------------------------------


def iso_millis(ts: float) -> str:
    """Logback's ``yyyy-MM-dd'T'HH:mm:ss.SSSXXX`` in UTC (XXX prints ``Z`` for offset 0)."""
    ms = int(ts * 1000)
    base = datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{ms % 1000:03d}Z"


@lru_cache(maxsize=4096)
def abbreviate_logger(name: str, target: int = 39) -> str:
    """Logback's ``%logger{39}``: shorten package segments, left to right, to their initial."""
    if len(name) <= target:
        return name
    parts = name.split(".")
    length = len(name)
    for i in range(len(parts) - 1):
        if length <= target:
            break
        length -= len(parts[i]) - 1
        parts[i] = parts[i][:1]
    return ".".join(parts)


@lru_cache(maxsize=4096)
def _logger_column(name: str) -> str:
    # %-40.40: pad right to 40, and when longer keep the rightmost 40 characters.
    return f"{abbreviate_logger(name)[-40:]:<40}"


@lru_cache(maxsize=1024)
def _thread_column(thread: str) -> str:
    return f"{thread[-15:]:>15}"


def render_plain(event: LogEvent, ts: float, app: str) -> list[str]:
    """Spring Boot 3.2+ default console layout; a stack trace follows after a blank line."""
    head = (
        f"{iso_millis(ts)} {event.level:>5} 1 --- [{app}] [{_thread_column(event.thread)}] "
        f"{_logger_column(event.logger)} : "
    )
    first, *rest = event.message.split("\n")
    lines = [head + first, *rest]
    if event.trace:
        lines.append("")
        lines.extend(event.trace)
    return lines


def render_json(event: LogEvent, ts: float) -> list[str]:
    """logstash-logback-encoder's LogstashEncoder: one compact object per event."""
    doc: dict[str, object] = {
        "@timestamp": iso_millis(ts),
        "@version": "1",
        "message": event.message,
        "logger_name": event.logger,
        "thread_name": event.thread,
        "level": event.level,
        "level_value": LEVEL_VALUES[event.level],
    }
    if event.trace:
        doc["stack_trace"] = "\n".join(event.trace)
    return [json.dumps(doc, separators=(",", ":"), ensure_ascii=False)]


def render(event: LogEvent, ts: float, fmt: LogFormat, app: str) -> list[str]:
    if fmt == "json":
        return render_json(event, ts)
    return render_plain(event, ts, app)


# --- vocabularies --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Template:
    """One kind of line. ``logger``, ``message`` and ``trace`` are ``str.format`` templates."""

    level: Level
    logger: str
    message: str
    thread: str = "http"
    trace: tuple[str, ...] = ()
    weight: float = 1.0


@dataclass(frozen=True)
class Vocabulary:
    kind: str
    web: Web
    has_db: bool
    info: tuple[Template, ...]
    warn: tuple[Template, ...]
    error: tuple[Template, ...]
    sick: tuple[Template, ...]
    info_cum: tuple[float, ...] = field(init=False)
    warn_cum: tuple[float, ...] = field(init=False)
    error_cum: tuple[float, ...] = field(init=False)
    sick_cum: tuple[float, ...] = field(init=False)

    def __post_init__(self) -> None:
        for name in ("info", "warn", "error", "sick"):
            total = 0.0
            cum: list[float] = []
            for t in getattr(self, name):
                total += t.weight
                cum.append(total)
            object.__setattr__(self, f"{name}_cum", tuple(cum))


@dataclass(frozen=True)
class AppContext:
    """Everything about one service that its log text depends on."""

    app: str
    port: int
    pkg: str
    app_class: str
    vocab: Vocabulary


class Fields(dict[str, str]):
    """Template values drawn lazily, so a line only pays for the placeholders it uses."""

    def __init__(self, rng: random.Random, ctx: AppContext) -> None:
        super().__init__(app=ctx.app, pkg=ctx.pkg, port=str(ctx.port), cls=ctx.app_class)
        self._rng = rng

    def __missing__(self, key: str) -> str:
        r = self._rng
        value: str
        if key in ("uid", "uid2"):
            value = str(r.randint(1000, 99999))
        elif key == "email":
            value = f"user{r.randint(1000, 99999)}@example.com"
        elif key == "tid":
            value = str(r.randint(100000, 9999999))
        elif key == "ms":
            value = str(int(r.lognormvariate(3.4, 0.6)))
        elif key == "slow":
            value = str(r.randint(800, 4800))
        elif key == "n":
            value = str(r.randint(2, 40))
        elif key == "k":
            value = str(r.randint(1, 4))
        elif key == "ip":
            value = f"10.244.{r.randint(0, 7)}.{r.randint(2, 250)}"
        elif key == "waiting":
            value = str(r.randint(3, 60))
        elif key == "hex":
            value = f"{r.getrandbits(32):08x}"
        elif key == "pct":
            value = str(r.randint(70, 99))
        elif key == "exec":
            value = str(r.randint(1, 10))
        elif key == "line":
            value = str(r.randint(40, 260))
        elif key == "peer":
            value = r.choice(("tweet", "user"))
        elif key == "reg":
            value = r.choice(("auth", "gateway", "tweet", "user"))
        elif key in ("PEER", "REG"):
            # Upper-case twins must name the same service as their lower-case placeholder.
            value = self[key.lower()].upper()
        else:
            raise KeyError(key)
        self[key] = value
        return value


_t = Template


_HIKARI_TIMEOUT = (
    "HikariPool-1 - Connection is not available, request timed out after 30000ms "
    "(total=10, active=10, idle=0, waiting={waiting})"
)

_HIKARI_TRACE: tuple[str, ...] = (
    "java.sql.SQLTransientConnectionException: " + _HIKARI_TIMEOUT,
    "\tat com.zaxxer.hikari.pool.HikariPool.createTimeoutException(HikariPool.java:686)",
    "\tat com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:179)",
    "\tat com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:144)",
    "\tat com.zaxxer.hikari.HikariDataSource.getConnection(HikariDataSource.java:127)",
    "\tat org.hibernate.engine.jdbc.connections.internal.DatasourceConnectionProviderImpl"
    ".getConnection(DatasourceConnectionProviderImpl.java:122)",
    "\tat org.hibernate.internal.NonContextualJdbcConnectionAccess.obtainConnection"
    "(NonContextualJdbcConnectionAccess.java:46)",
    "\tat org.hibernate.resource.jdbc.internal.LogicalConnectionManagedImpl"
    ".acquireConnectionIfNeeded(LogicalConnectionManagedImpl.java:113)",
    "\tat org.springframework.orm.jpa.JpaTransactionManager.doBegin"
    "(JpaTransactionManager.java:420)",
    "\tat org.springframework.transaction.support.AbstractPlatformTransactionManager"
    ".startTransaction(AbstractPlatformTransactionManager.java:531)",
    "\tat {pkg}.service.{svc}Service.{op}({svc}Service.java:{line})",
    "\tat {pkg}.controller.{svc}Controller.{op}({svc}Controller.java:{line})",
    "\tat java.base/jdk.internal.reflect.DirectMethodHandleAccessor.invoke"
    "(DirectMethodHandleAccessor.java:103)",
    "\tat org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:885)",
    "\tat org.apache.tomcat.util.threads.TaskThread$WrappingRunnable.run(TaskThread.java:61)",
    "\tat java.base/java.lang.Thread.run(Thread.java:1583)",
)


def _db_sick(svc: str, op: str, request: str) -> tuple[Template, ...]:
    """Lines of a service whose database pool is exhausted: the "unhealthy" image."""

    def fill(lines: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(x.replace("{svc}", svc).replace("{op}", op) for x in lines)

    return (
        _t("WARN", SQL_HELPER, "SQL Error: 0, SQLState: 08003", weight=3),
        _t("ERROR", SQL_HELPER, _HIKARI_TIMEOUT, weight=3),
        _t(
            "ERROR",
            DISPATCHER,
            "Servlet.service() for servlet [dispatcherServlet] in context with path [] threw "
            "exception [Request processing failed: org.springframework.transaction."
            "CannotCreateTransactionException: Could not open JPA EntityManager for transaction]"
            " with root cause",
            trace=fill(_HIKARI_TRACE),
            weight=1.5,
        ),
        _t(
            "WARN",
            "com.zaxxer.hikari.pool.HikariPool",
            "HikariPool-1 - Thread starvation or clock leap detected "
            "(housekeeper delta=1m{n}s{line}ms).",
            thread="HikariPool-1 housekeeper",
            weight=0.3,
        ),
        _t(
            "WARN",
            "{pkg}.config.RequestTimingFilter",
            f"Slow request {request} handling took {{slow}} ms (threshold 500 ms)",
            weight=2,
        ),
    )


_MAIL_TRACE: tuple[str, ...] = (
    "org.springframework.mail.MailSendException: Mail server connection failed. "
    "Failed messages: jakarta.mail.MessagingException: Could not connect to SMTP host: "
    "smtp.example.com, port: 587",
    "\tat org.springframework.mail.javamail.JavaMailSenderImpl.doSend(JavaMailSenderImpl.java:443)",
    "\tat org.springframework.mail.javamail.JavaMailSenderImpl.send(JavaMailSenderImpl.java:361)",
    "\tat {pkg}.service.EmailService.sendVerificationEmail(EmailService.java:{line})",
    "\tat {pkg}.service.RegistrationService.register(RegistrationService.java:{line})",
    "\tat java.base/java.lang.Thread.run(Thread.java:1583)",
    "Caused by: jakarta.mail.MessagingException: Could not connect to SMTP host: "
    "smtp.example.com, port: 587",
    "\tat org.eclipse.angus.mail.smtp.SMTPTransport.openServer(SMTPTransport.java:2258)",
    "\tat org.eclipse.angus.mail.smtp.SMTPTransport.protocolConnect(SMTPTransport.java:753)",
    "\t... 14 common frames omitted",
    "Caused by: java.net.SocketTimeoutException: Connect timed out",
    "\tat java.base/sun.nio.ch.NioSocketImpl.timedFinishConnect(NioSocketImpl.java:546)",
    "\tat java.base/java.net.Socket.connect(Socket.java:751)",
    "\t... 16 common frames omitted",
)

_NPE_TRACE: tuple[str, ...] = (
    'java.lang.NullPointerException: Cannot invoke "{pkg}.model.{entity}.getId()" because '
    '"{var}" is null',
    "\tat {pkg}.service.{entity}Service.{op}({entity}Service.java:{line})",
    "\tat {pkg}.controller.{entity}Controller.{op}({entity}Controller.java:{line})",
    "\tat java.base/jdk.internal.reflect.DirectMethodHandleAccessor.invoke"
    "(DirectMethodHandleAccessor.java:103)",
    "\tat org.springframework.web.method.support.InvocableHandlerMethod.doInvoke"
    "(InvocableHandlerMethod.java:255)",
    "\tat org.springframework.web.servlet.DispatcherServlet.doDispatch"
    "(DispatcherServlet.java:1089)",
    "\tat org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:885)",
    "\tat org.apache.tomcat.util.threads.TaskThread$WrappingRunnable.run(TaskThread.java:61)",
    "\tat java.base/java.lang.Thread.run(Thread.java:1583)",
)


def _npe(entity: str, op: str, var: str) -> Template:
    trace = tuple(
        x.replace("{entity}", entity).replace("{op}", op).replace("{var}", var) for x in _NPE_TRACE
    )
    return _t(
        "ERROR",
        DISPATCHER,
        "Servlet.service() for servlet [dispatcherServlet] in context with path [] threw "
        "exception [Request processing failed: java.lang.NullPointerException] with root cause",
        trace=trace,
    )


_AUTH = Vocabulary(
    kind="auth",
    web="tomcat",
    has_db=True,
    info=(
        _t(
            "INFO", "{pkg}.controller.AuthController", "Login succeeded for user id={uid}", weight=5
        ),
        _t("INFO", "{pkg}.controller.AuthController", "Login attempt for {email}", weight=3),
        _t(
            "INFO",
            "{pkg}.service.JwtService",
            "Issued access token for user id={uid} (expires in 900s)",
            weight=3,
        ),
        _t("INFO", "{pkg}.service.JwtService", "Refreshed session for user id={uid}", weight=3),
        _t("INFO", "{pkg}.service.RegistrationService", "Registration started for {email}"),
        _t("INFO", "{pkg}.service.EmailService", "Verification email queued for {email}"),
        _t("INFO", "{pkg}.service.RegistrationService", "Registration completed for user id={uid}"),
        _t(
            "INFO",
            "{pkg}.scheduler.SessionCleanupJob",
            "Removed {n} expired sessions",
            thread="scheduling-1",
            weight=0.2,
        ),
    ),
    warn=(
        _t(
            "WARN",
            "{pkg}.controller.AuthController",
            "Login failed for {email}: bad credentials (attempt {k} of 5)",
            weight=3,
        ),
        _t("WARN", "{pkg}.service.OtpService", "OTP verification failed for {email}: code expired"),
        _t(
            "WARN",
            "{pkg}.security.RateLimitFilter",
            "Rate limit exceeded for client {ip} on /api/auth/login",
        ),
    ),
    error=(
        _t(
            "ERROR",
            "{pkg}.service.EmailService",
            "Failed to send verification email to {email}",
            trace=_MAIL_TRACE,
        ),
    ),
    sick=_db_sick("Auth", "login", "POST /api/auth/login"),
)

_TWEET = Vocabulary(
    kind="tweet",
    web="tomcat",
    has_db=True,
    info=(
        _t(
            "INFO",
            "{pkg}.service.TweetService",
            "Created tweet id={tid} by user id={uid}",
            weight=2,
        ),
        _t(
            "INFO",
            "{pkg}.controller.TweetController",
            "Fetched tweet id={tid} in {ms} ms",
            weight=4,
        ),
        _t(
            "INFO",
            "{pkg}.service.TimelineService",
            "Timeline for user id={uid}: {n} tweets in {ms} ms",
            weight=4,
        ),
        _t(
            "INFO", "{pkg}.service.TweetService", "Like recorded on tweet id={tid} by user id={uid}"
        ),
        _t(
            "INFO",
            "{pkg}.service.TweetService",
            "Deleted tweet id={tid} by user id={uid}",
            weight=0.3,
        ),
    ),
    warn=(
        _t("WARN", "{pkg}.controller.TweetController", "Tweet id={tid} not found", weight=2),
        _t(
            "WARN",
            "{pkg}.repository.TweetRepository",
            "Slow query: TweetRepository.findTimeline took {slow} ms",
        ),
        _t(
            "WARN",
            "{pkg}.service.TweetService",
            "Rejected tweet from user id={uid}: content exceeds 280 characters",
        ),
    ),
    error=(_npe("Tweet", "getTweet", "tweet"),),
    sick=_db_sick("Tweet", "getTimeline", "GET /api/tweets"),
)

_USER = Vocabulary(
    kind="user",
    web="tomcat",
    has_db=True,
    info=(
        _t(
            "INFO", "{pkg}.controller.UserController", "Fetched profile for user id={uid}", weight=5
        ),
        _t("INFO", "{pkg}.service.UserService", "Updated profile for user id={uid}", weight=2),
        _t(
            "INFO", "{pkg}.service.FollowService", "User id={uid} followed user id={uid2}", weight=2
        ),
        _t(
            "INFO",
            "{pkg}.cache.ProfileCache",
            "Profile cache hit ratio {pct}% over last 60s",
            thread="scheduling-1",
            weight=0.2,
        ),
    ),
    warn=(
        _t("WARN", "{pkg}.controller.UserController", "Profile for user id={uid} not found"),
        _t(
            "WARN",
            "{pkg}.service.UserService",
            "Avatar upload rejected for user id={uid}: file exceeds 5 MB",
        ),
    ),
    error=(_npe("User", "getProfile", "user"),),
    sick=_db_sick("User", "getProfile", "GET /api/users/{uid}"),
)

_GATEWAY_TRACE: tuple[str, ...] = (
    "io.netty.channel.AbstractChannel$AnnotatedConnectException: Connection refused: "
    "{peer}-service/10.96.{n}.{line}:8080",
    "\tSuppressed: The stacktrace has been enhanced by Reactor, refer to additional information"
    " below: ",
    "Error has been observed at the following site(s):",
    "\t*__checkpoint \u21e2 org.springframework.cloud.gateway.filter.WeightCalculatorWebFilter "
    "[DefaultWebFilterChain]",
    '\t*__checkpoint \u21e2 HTTP GET "/api/{peer}s/{uid}" [ExceptionHandlingWebHandler]',
    "Original Stack Trace:",
    "Caused by: java.net.ConnectException: Connection refused",
    "\tat java.base/sun.nio.ch.Net.pollConnect(Native Method)",
    "\tat java.base/sun.nio.ch.Net.pollConnectNow(Net.java:682)",
    "\tat io.netty.channel.socket.nio.NioSocketChannel.doFinishConnect(NioSocketChannel.java:337)",
    "\tat io.netty.channel.nio.NioEventLoop.run(NioEventLoop.java:566)",
    "\tat java.base/java.lang.Thread.run(Thread.java:1583)",
)

_GATEWAY = Vocabulary(
    kind="gateway",
    web="netty",
    has_db=False,
    info=(
        _t(
            "INFO",
            "{pkg}.filter.RequestLoggingFilter",
            "GET /api/{peer}s/{uid} -> {peer}-service 200 in {ms} ms",
            thread="reactor-http-epoll-{k}",
            weight=5,
        ),
        _t(
            "INFO",
            "{pkg}.filter.RequestLoggingFilter",
            "POST /api/auth/login -> auth-service 200 in {ms} ms",
            thread="reactor-http-epoll-{k}",
            weight=2,
        ),
    ),
    warn=(
        _t(
            "WARN",
            "{pkg}.filter.JwtAuthenticationFilter",
            "Rejected GET /api/users/{uid}: access token expired",
            thread="reactor-http-epoll-{k}",
        ),
        _t(
            "WARN",
            "{pkg}.filter.RequestLoggingFilter",
            "POST /api/auth/login -> auth-service 401 in {ms} ms",
            thread="reactor-http-epoll-{k}",
        ),
    ),
    error=(
        _t(
            "ERROR",
            "org.springframework.boot.autoconfigure.web.reactive.error."
            "AbstractErrorWebExceptionHandler",
            '[{hex}-{n}]  500 Server Error for HTTP GET "/api/{peer}s/{uid}"',
            thread="reactor-http-epoll-{k}",
            trace=_GATEWAY_TRACE,
        ),
    ),
    sick=(
        _t(
            "WARN",
            "{pkg}.filter.RequestLoggingFilter",
            "GET /api/{peer}s/{uid} -> {peer}-service 504 in {slow} ms",
            thread="reactor-http-epoll-{k}",
            weight=3,
        ),
        _t(
            "ERROR",
            "org.springframework.boot.autoconfigure.web.reactive.error."
            "AbstractErrorWebExceptionHandler",
            '[{hex}-{n}]  504 GATEWAY_TIMEOUT "Response took longer than timeout: PT5S" for '
            'HTTP GET "/api/{peer}s/{uid}"',
            thread="reactor-http-epoll-{k}",
            weight=2,
        ),
        _t(
            "WARN",
            "io.github.resilience4j.circuitbreaker.internal.CircuitBreakerStateMachine",
            "CircuitBreaker '{peer}-service' changed state from CLOSED to OPEN",
            thread="reactor-http-epoll-{k}",
            weight=0.5,
        ),
    ),
)

_EUREKA_REGISTRY = "com.netflix.eureka.registry.AbstractInstanceRegistry"

_DISCOVERY = Vocabulary(
    kind="discovery",
    web="tomcat",
    has_db=False,
    info=(
        _t(
            "INFO",
            _EUREKA_REGISTRY,
            "Running the evict task with compensationTime {n}ms",
            thread="Eureka-EvictionTimer",
        ),
        _t(
            "INFO",
            _EUREKA_REGISTRY,
            "Registered instance {REG}-SERVICE/{reg}-service-{hex}:{reg}-service:8080 with "
            "status UP (replication=false)",
            weight=2,
        ),
        _t(
            "INFO",
            "com.netflix.eureka.registry.ResponseCacheImpl",
            "Invalidating the response cache key : Application {REG}-SERVICE V2 full",
            weight=2,
        ),
    ),
    warn=(
        _t(
            "WARN",
            _EUREKA_REGISTRY,
            "DS: Registry: lease doesn't exist, registering resource: {REG}-SERVICE - "
            "{reg}-service-{hex}:{reg}-service:8080",
        ),
    ),
    error=(
        _t(
            "ERROR",
            "com.netflix.eureka.cluster.ReplicationTaskProcessor",
            "Network level connection to peer discovery-service; retrying after delay",
            thread="TaskNonBatchingWorker-target_discovery-service-0",
            trace=(
                "com.sun.jersey.api.client.ClientHandlerException: java.net.SocketTimeoutException:"
                " Read timed out",
                "\tat com.sun.jersey.client.apache4.ApacheHttpClient4Handler.handle"
                "(ApacheHttpClient4Handler.java:187)",
                "\tat com.netflix.eureka.cluster.ReplicationTaskProcessor.process"
                "(ReplicationTaskProcessor.java:80)",
                "\tat java.base/java.lang.Thread.run(Thread.java:1583)",
                "Caused by: java.net.SocketTimeoutException: Read timed out",
                "\tat java.base/sun.nio.ch.NioSocketImpl.timedRead(NioSocketImpl.java:288)",
                "\t... 12 common frames omitted",
            ),
        ),
    ),
    sick=(
        _t(
            "WARN",
            _EUREKA_REGISTRY,
            "Lease expired for {REG}-SERVICE/{reg}-service-{hex}:{reg}-service:8080",
            thread="Eureka-EvictionTimer",
            weight=2,
        ),
        _t(
            "ERROR",
            "com.netflix.eureka.cluster.ReplicationTaskProcessor",
            "It seems to be a socket read timeout exception, it will retry later. if it continues"
            " to happen and some eureka node occupied all the cpu time, you should set property "
            "'eureka.server.peer-node-read-timeout-ms' to a bigger value",
            thread="TaskNonBatchingWorker-target_discovery-service-0",
            weight=2,
        ),
        _t(
            "WARN",
            "{pkg}.config.RequestTimingFilter",
            "Slow request GET /eureka/apps handling took {slow} ms (threshold 500 ms)",
        ),
    ),
)


def _generic(entity: str) -> Vocabulary:
    return Vocabulary(
        kind="generic",
        web="tomcat",
        has_db=True,
        info=(
            _t(
                "INFO",
                f"{{pkg}}.controller.{entity}Controller",
                "Handled request in {ms} ms",
                weight=4,
            ),
            _t(
                "INFO",
                f"{{pkg}}.service.{entity}Service",
                "Processed item id={tid} for user id={uid}",
            ),
        ),
        warn=(_t("WARN", f"{{pkg}}.controller.{entity}Controller", "Item id={tid} not found"),),
        error=(_npe(entity, "getItem", "item"),),
        sick=_db_sick(entity, "getItem", "GET /api/items/{tid}"),
    )


_KINDS: tuple[tuple[tuple[str, ...], Vocabulary], ...] = (
    (("gateway",), _GATEWAY),
    (("discovery", "eureka", "registry"), _DISCOVERY),
    (("auth",), _AUTH),
    (("tweet", "post", "feed"), _TWEET),
    (("user", "profile", "account"), _USER),
)


def _camel(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in name.replace("_", "-").split("-") if p)


def service_kind(service: str) -> str:
    """The vocabulary a service name maps to; also used by the traffic simulation."""
    low = service.lower()
    for keys, vocab in _KINDS:
        if any(k in low for k in keys):
            return vocab.kind
    return "generic"


@lru_cache(maxsize=1024)
def app_context(service: str, port: int) -> AppContext:
    low = service.lower()
    vocab: Vocabulary | None = None
    for keys, candidate in _KINDS:
        if any(k in low for k in keys):
            vocab = candidate
            break
    first = low.replace("_", "-").split("-")[0] or "app"
    if vocab is None:
        vocab = _generic(_camel(first))
    pkg_part = "".join(c for c in first if c.isalnum()) or "app"
    return AppContext(
        app=service,
        port=port,
        pkg=f"{PACKAGE_ROOT}.{pkg_part}",
        app_class=f"{_camel(service)}Application",
        vocab=vocab,
    )


def _pick(rng: random.Random, items: Sequence[Template], cum: Sequence[float]) -> Template:
    return rng.choices(items, cum_weights=cum, k=1)[0]


def _materialise(t: Template, rng: random.Random, ctx: AppContext) -> LogEvent:
    f = Fields(rng, ctx)
    thread = t.thread
    if thread == "http":
        thread = (
            f"reactor-http-epoll-{rng.randint(1, 4)}"
            if ctx.vocab.web == "netty"
            else f"http-nio-{ctx.port}-exec-{rng.randint(1, 10)}"
        )
    else:
        thread = thread.format_map(f)
    return LogEvent(
        level=t.level,
        logger=t.logger.format_map(f),
        thread=thread,
        message=t.message.format_map(f),
        trace=tuple(line.format_map(f) for line in t.trace),
    )


def running_event(
    ctx: AppContext, rng: random.Random, *, sick: bool, p_error: float, p_warn: float
) -> LogEvent:
    """One line of a running service; ``sick`` mixes in the unhealthy image's failures."""
    v = ctx.vocab
    roll = rng.random()
    if sick and roll < 0.45:
        return _materialise(_pick(rng, v.sick, v.sick_cum), rng, ctx)
    roll = rng.random()
    if roll < p_error:
        return _materialise(_pick(rng, v.error, v.error_cum), rng, ctx)
    if roll < p_error + p_warn:
        return _materialise(_pick(rng, v.warn, v.warn_cum), rng, ctx)
    return _materialise(_pick(rng, v.info, v.info_cum), rng, ctx)


# --- lifecycle ------------------------------------------------------------------------------


def app_version(image: str) -> str:
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    tag = last.rsplit(":", 1)[1] if ":" in last else "0.0.1-SNAPSHOT"
    return tag if tag.startswith("v") else f"v{tag}"


_MAIN = "main"
_SPRING_APP = "org.springframework.boot.SpringApplication"
_SERVLET_CTX = "org.springframework.boot.web.servlet.context.ServletWebServerApplicationContext"
_TOMCAT = "org.springframework.boot.web.embedded.tomcat.TomcatWebServer"
_NETTY = "org.springframework.boot.web.embedded.netty.NettyWebServer"


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _info(logger: str, message: str) -> LogEvent:
    return LogEvent("INFO", logger, _MAIN, message)


def _boot_head(ctx: AppContext, version: str, rng: random.Random) -> list[LogEvent]:
    main_logger = f"{ctx.pkg}.{ctx.app_class}"
    events = [
        _info(
            main_logger,
            f"Starting {ctx.app_class} {version} using Java {JAVA_VERSION} with PID 1 "
            f"(/app/app.jar started by spring in /app)",
        ),
        _info(main_logger, 'The following 1 profile is active: "prod"'),
        _info(
            "org.springframework.data.repository.config.RepositoryConfigurationDelegate",
            "Bootstrapping Spring Data JPA repositories in DEFAULT mode.",
        )
        if ctx.vocab.has_db
        else _info(
            "org.springframework.cloud.context.scope.GenericScope",
            f"BeanFactory id={_uuid(rng)}",
        ),
    ]
    if ctx.vocab.web == "tomcat":
        events += [
            _info(_TOMCAT, f"Tomcat initialized with port {ctx.port} (http)"),
            _info("org.apache.catalina.core.StandardService", "Starting service [Tomcat]"),
            _info(
                "org.apache.catalina.core.StandardEngine",
                f"Starting Servlet engine: [Apache Tomcat/{TOMCAT_VERSION}]",
            ),
            _info(
                "org.apache.catalina.core.ContainerBase.[Tomcat].[localhost].[/]",
                "Initializing Spring embedded WebApplicationContext",
            ),
            _info(
                _SERVLET_CTX,
                "Root WebApplicationContext: initialization completed in "
                f"{rng.randint(900, 2400)} ms",
            ),
        ]
    return events


def _boot_db(ctx: AppContext, rng: random.Random) -> list[LogEvent]:
    if not ctx.vocab.has_db:
        return []
    return [
        _info(
            "org.hibernate.jpa.internal.util.LogHelper",
            "HHH000204: Processing PersistenceUnitInfo [name: default]",
        ),
        _info(
            "org.hibernate.Version", f"HHH000412: Hibernate ORM core version {HIBERNATE_VERSION}"
        ),
        _info("com.zaxxer.hikari.HikariDataSource", "HikariPool-1 - Starting..."),
        _info(
            "com.zaxxer.hikari.pool.HikariPool",
            "HikariPool-1 - Added connection "
            f"org.postgresql.jdbc.PgConnection@{rng.getrandbits(32):x}",
        ),
        _info("com.zaxxer.hikari.HikariDataSource", "HikariPool-1 - Start completed."),
    ]


def startup_events(ctx: AppContext, version: str, rng: random.Random) -> list[LogEvent]:
    """A clean start, ending with Spring Boot's "Started ..." line."""
    events = _boot_head(ctx, version, rng) + _boot_db(ctx, rng)
    if ctx.vocab.has_db:
        events.append(
            _info(
                "org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean",
                "Initialized JPA EntityManagerFactory for persistence unit 'default'",
            )
        )
    events.append(
        _info(
            "org.springframework.boot.actuate.endpoint.web.EndpointLinksResolver",
            "Exposing 3 endpoint(s) beneath base path '/actuator'",
        )
    )
    if ctx.vocab.web == "netty":
        events.append(_info(_NETTY, f"Netty started on port {ctx.port}"))
    else:
        events.append(
            _info(_TOMCAT, f"Tomcat started on port {ctx.port} (http) with context path ''")
        )
    took = rng.uniform(5.5, 11.0)
    events.append(
        _info(
            f"{ctx.pkg}.{ctx.app_class}",
            f"Started {ctx.app_class} in {took:.3f} seconds "
            f"(process running for {took + rng.uniform(0.5, 1.4):.3f})",
        )
    )
    return events


_BEAN_PREFIX = "\tat org.springframework.beans.factory.support."
_COMMON_FRAMES: tuple[str, ...] = (
    _BEAN_PREFIX + "AbstractAutowireCapableBeanFactory.initializeBean"
    "(AbstractAutowireCapableBeanFactory.java:1786)",
    _BEAN_PREFIX + "AbstractAutowireCapableBeanFactory.doCreateBean"
    "(AbstractAutowireCapableBeanFactory.java:600)",
    _BEAN_PREFIX + "AbstractAutowireCapableBeanFactory.createBean"
    "(AbstractAutowireCapableBeanFactory.java:522)",
    _BEAN_PREFIX + "AbstractBeanFactory.lambda$doGetBean$0(AbstractBeanFactory.java:326)",
    _BEAN_PREFIX
    + "DefaultSingletonBeanRegistry.getSingleton(DefaultSingletonBeanRegistry.java:234)",
    _BEAN_PREFIX + "AbstractBeanFactory.doGetBean(AbstractBeanFactory.java:324)",
    _BEAN_PREFIX + "AbstractBeanFactory.getBean(AbstractBeanFactory.java:200)",
    "\tat org.springframework.context.support.AbstractApplicationContext.refresh"
    "(AbstractApplicationContext.java:631)",
    "\tat org.springframework.boot.SpringApplication.refresh(SpringApplication.java:754)",
    "\tat org.springframework.boot.SpringApplication.refreshContext(SpringApplication.java:456)",
    "\tat org.springframework.boot.SpringApplication.run(SpringApplication.java:334)",
    "\tat org.springframework.boot.SpringApplication.run(SpringApplication.java:1354)",
    "\tat org.springframework.boot.SpringApplication.run(SpringApplication.java:1343)",
    "\tat {main}.main({cls}.java:12)",
    "\tat java.base/jdk.internal.reflect.DirectMethodHandleAccessor.invoke"
    "(DirectMethodHandleAccessor.java:103)",
    "\tat org.springframework.boot.loader.launch.Launcher.launch(Launcher.java:91)",
    "\tat org.springframework.boot.loader.launch.JarLauncher.main(JarLauncher.java:53)",
)


def _crash_db(ctx: AppContext) -> tuple[str, tuple[str, ...]]:
    head = (
        "org.springframework.beans.factory.BeanCreationException: Error creating bean with name "
        "'entityManagerFactory' defined in class path resource [org/springframework/boot/"
        "autoconfigure/orm/jpa/HibernateJpaConfiguration.class]: Unable to create requested "
        "service [org.hibernate.engine.jdbc.env.spi.JdbcEnvironment] due to: Unable to "
        "determine Dialect without JDBC metadata (please set 'jakarta.persistence.jdbc.url' "
        "for common cases or 'hibernate.dialect' when a custom Dialect implementation must be "
        "provided)"
    )
    causes = (
        "Caused by: org.hibernate.service.spi.ServiceException: Unable to create requested "
        "service [org.hibernate.engine.jdbc.env.spi.JdbcEnvironment] due to: Unable to "
        "determine Dialect without JDBC metadata",
        "\tat org.hibernate.service.internal.AbstractServiceRegistryImpl.createService"
        "(AbstractServiceRegistryImpl.java:276)",
        "\tat org.hibernate.service.internal.AbstractServiceRegistryImpl.initializeService"
        "(AbstractServiceRegistryImpl.java:238)",
        "\t... 27 common frames omitted",
        "Caused by: org.postgresql.util.PSQLException: Connection to postgres-primary:5432 "
        "refused. Check that the hostname and port are correct and that the postmaster is "
        "accepting TCP/IP connections.",
        "\tat org.postgresql.core.v3.ConnectionFactoryImpl.openConnectionImpl"
        "(ConnectionFactoryImpl.java:352)",
        "\tat org.postgresql.core.ConnectionFactory.openConnection(ConnectionFactory.java:54)",
        "\tat com.zaxxer.hikari.pool.HikariPool.checkFailFast(HikariPool.java:562)",
        "\t... 41 common frames omitted",
        "Caused by: java.net.ConnectException: Connection refused",
        "\tat java.base/sun.nio.ch.Net.pollConnect(Native Method)",
        "\tat java.base/sun.nio.ch.NioSocketImpl.timedFinishConnect(NioSocketImpl.java:547)",
        "\t... 54 common frames omitted",
    )
    return head, (head, *_COMMON_FRAMES, *causes)


def _crash_flyway(ctx: AppContext) -> tuple[str, tuple[str, ...]]:
    head = (
        "org.springframework.beans.factory.BeanCreationException: Error creating bean with name "
        "'flywayInitializer' defined in class path resource [org/springframework/boot/"
        "autoconfigure/flyway/FlywayAutoConfiguration$FlywayConfiguration.class]: Validate "
        "failed: Migrations have failed validation"
    )
    causes = (
        "Caused by: org.flywaydb.core.api.exception.FlywayValidateException: Validate failed: "
        "Migrations have failed validation",
        "Detected failed migration to version 14 (add user handle index).",
        "Please remove any half-completed changes then run repair to fix the schema history.",
        "Need more flexibility with validation rules? Learn more: https://rd.gt/3AbJUZE",
        "\tat org.flywaydb.core.Flyway.lambda$migrate$0(Flyway.java:116)",
        "\tat org.flywaydb.core.FlywayExecutor.execute(FlywayExecutor.java:205)",
        "\tat org.flywaydb.core.Flyway.migrate(Flyway.java:147)",
        "\t... 18 common frames omitted",
    )
    return head, (head, *_COMMON_FRAMES, *causes)


def _crash_property(ctx: AppContext) -> tuple[str, tuple[str, ...]]:
    prop = f"app.{ctx.vocab.kind}.upstream-url"
    head = (
        "org.springframework.beans.factory.BeanCreationException: Error creating bean with name "
        f"'{ctx.vocab.kind}ClientConfig': Injection of autowired dependencies failed"
    )
    causes = (
        f"Caused by: java.lang.IllegalArgumentException: Could not resolve placeholder '{prop}' "
        f'in value "${{{prop}}}"',
        "\tat org.springframework.util.PropertyPlaceholderHelper.parseStringValue"
        "(PropertyPlaceholderHelper.java:180)",
        "\tat org.springframework.util.PropertyPlaceholderHelper.replacePlaceholders"
        "(PropertyPlaceholderHelper.java:126)",
        "\tat org.springframework.beans.factory.annotation.AutowiredAnnotationBeanPostProcessor"
        ".postProcessProperties(AutowiredAnnotationBeanPostProcessor.java:492)",
        "\t... 17 common frames omitted",
    )
    return head, (head, *_COMMON_FRAMES, *causes)


def crash_events(ctx: AppContext, version: str, rng: random.Random) -> list[LogEvent]:
    """A start that fails: Spring's refresh warning, Tomcat stopping, "Application run failed"."""
    causes = [_crash_property]
    if ctx.vocab.has_db:
        causes += [_crash_db, _crash_db, _crash_flyway]
    cause = rng.choice(causes)
    head, trace = cause(ctx)
    main = f"{ctx.pkg}.{ctx.app_class}"
    trace = tuple(line.replace("{main}", main).replace("{cls}", ctx.app_class) for line in trace)
    events = _boot_head(ctx, version, rng)
    if cause is not _crash_property and ctx.vocab.has_db:
        events.append(_info("com.zaxxer.hikari.HikariDataSource", "HikariPool-1 - Starting..."))
    refresh_logger = (
        _SERVLET_CTX
        if ctx.vocab.web == "tomcat"
        else "org.springframework.boot.web.reactive.context."
        "AnnotationConfigReactiveWebServerApplicationContext"
    )
    events.append(
        LogEvent(
            "WARN",
            refresh_logger,
            _MAIN,
            f"Exception encountered during context initialization - cancelling refresh attempt: "
            f"{head}",
        )
    )
    if ctx.vocab.web == "tomcat":
        events.append(
            _info("org.apache.catalina.core.StandardService", "Stopping service [Tomcat]")
        )
    events.append(
        _info(
            "org.springframework.boot.autoconfigure.logging.ConditionEvaluationReportLogger",
            "\n\nError starting ApplicationContext. To display the condition evaluation report "
            "re-run your application with 'debug' enabled.",
        )
    )
    events.append(LogEvent("ERROR", _SPRING_APP, _MAIN, "Application run failed", trace))
    return events


def shutdown_events(ctx: AppContext) -> list[LogEvent]:
    """Graceful shutdown after SIGTERM (server.shutdown=graceful)."""
    server = _NETTY if ctx.vocab.web == "netty" else _TOMCAT
    thread = "netty-shutdown" if ctx.vocab.web == "netty" else "tomcat-shutdown"
    events = [
        LogEvent(
            "INFO",
            "org.springframework.boot.web.embedded.GracefulShutdown"
            if ctx.vocab.web == "netty"
            else server,
            "SpringApplicationShutdownHook",
            "Commencing graceful shutdown. Waiting for active requests to complete",
        ),
        LogEvent("INFO", server, thread, "Graceful shutdown complete"),
    ]
    if ctx.vocab.has_db:
        events += [
            LogEvent(
                "INFO",
                "org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean",
                "SpringApplicationShutdownHook",
                "Closing JPA EntityManagerFactory for persistence unit 'default'",
            ),
            LogEvent(
                "INFO",
                "com.zaxxer.hikari.HikariDataSource",
                "SpringApplicationShutdownHook",
                "HikariPool-1 - Shutdown initiated...",
            ),
            LogEvent(
                "INFO",
                "com.zaxxer.hikari.HikariDataSource",
                "SpringApplicationShutdownHook",
                "HikariPool-1 - Shutdown completed.",
            ),
        ]
    return events

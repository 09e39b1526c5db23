"""What each kind of simulated service says: Spring Boot log templates per service kind
(gateway, discovery, auth, tweet, user, generic), weighted, and which kind a service name maps to.

Data, not logic: the templates are rendered by ``logtext``; a platform file of the same shape
gets plausible text without configuration because kinds are picked by keywords in the name.
Over 500 lines because it is one table of templates; splitting it per kind would scatter it.
"""

from __future__ import annotations

from functools import lru_cache

from backends.sandbox.logtext import (
    DISPATCHER,
    PACKAGE_ROOT,
    SQL_HELPER,
    AppContext,
    Template,
    Vocabulary,
)

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

"""What a simulated service prints when it starts, fails to start and shuts down: Spring Boot's
banner-less startup sequence, the three crash causes the sandbox's unhealthy images use (database
unreachable, a failed Flyway migration, a missing property) and the graceful shutdown lines.
"""

from __future__ import annotations

import random

from backends.sandbox.logtext import (
    HIBERNATE_VERSION,
    JAVA_VERSION,
    TOMCAT_VERSION,
    AppContext,
    LogEvent,
)

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

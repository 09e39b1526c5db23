"""The checklist's image check: whether an image reference is well-formed and whether the
configured registry has it (a manifest HEAD, with the anonymous Bearer token flow). The
state vocabulary is the one ``backends.checklist.net`` describes."""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from typing import Final

import httpx

from backends.checklist.net import NetFinding, NetState, finding
from backends.health.tls import client_ssl_context

__all__ = ["ImageRef", "check_image", "parse_image_reference"]

# The grammar of github.com/distribution/reference (what docker and containerd parse), which
# the OCI distribution spec's repository-name and tag rules match.
_PATH_COMPONENT: Final = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY: Final = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_DOMAIN_COMPONENT: Final = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
_DOMAIN: Final = re.compile(
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?"
)
_TAG: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
# The OCI image spec's registered algorithms, with their exact encoded lengths.
_DIGEST: Final = re.compile(r"sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}")
_NAME_MAX: Final = 255

# Every manifest type a deployment may point at: without them a registry may answer 404 for
# an image it only has as an OCI index, or convert it to a schema-1 manifest.
_MANIFEST_ACCEPT: Final = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
# RFC 6750's b64token: a token outside it could not be sent as a header, and the HTTP
# library's error would quote the header value, secret and all.
_BEARER_TOKEN: Final = re.compile(r"[A-Za-z0-9._~+/-]+=*")
_CHALLENGE_PARAM: Final = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"([^"]*)"|([^\s,]*))')


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A parsed image reference. ``domain`` is None when the reference names none (docker
    would pull it from Docker Hub); ``repository`` never includes the domain."""

    domain: str | None
    repository: str
    tag: str | None
    digest: str | None

    @property
    def manifest_reference(self) -> str:
        """What the registry is asked for: the digest when pinned (that is what gets
        pulled, whatever the tag says), else the tag, else "latest" (docker's default)."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        name = f"{self.domain}/{self.repository}" if self.domain else self.repository
        return (
            name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")
        )


def parse_image_reference(reference: str) -> ImageRef:
    """``[registry/]repository[:tag][@sha256:…]`` parsed; ValueError says what is wrong.

    The first path component is the registry when it looks like a host (has a "." or ":",
    is "localhost", or has upper case), as docker decides. The repository is lower case,
    the tag is ``[A-Za-z0-9_][A-Za-z0-9._-]{0,127}``, the digest sha256 or sha512 in hex.
    """
    if not reference:
        raise ValueError("empty")
    if reference != reference.strip() or any(ch.isspace() for ch in reference):
        raise ValueError("contains whitespace")
    name_tag, at, digest = reference.partition("@")
    if at:
        if not _DIGEST.fullmatch(digest):
            raise ValueError("digest must be sha256:<64 hex> or sha512:<128 hex>, lower case")
    else:
        digest = ""
    # A ":" after the last "/" starts the tag; one before it is a registry port.
    name, tag = name_tag, ""
    colon = name_tag.rfind(":")
    if colon > name_tag.rfind("/"):
        name, tag = name_tag[:colon], name_tag[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise ValueError(
                f"tag {tag!r} must be 1-128 of [A-Za-z0-9_.-], not starting with . or -"
            )
    if not name:
        raise ValueError("no repository name")
    if len(name) > _NAME_MAX:
        raise ValueError(f"name longer than {_NAME_MAX} characters")
    domain: str | None = None
    first, slash, rest = name.partition("/")
    if slash and (
        any(ch in first for ch in ".:") or first == "localhost" or first != first.lower()
    ):
        if not _DOMAIN.fullmatch(first):
            raise ValueError(f"registry {first!r} is not a valid host[:port]")
        domain, name = first, rest
        if not name:
            raise ValueError("no repository name after the registry")
    if not _REPOSITORY.fullmatch(name):
        if name != name.lower():
            raise ValueError(f"repository {name!r} must be lower case")
        raise ValueError(
            f"repository {name!r} must be /-separated components of [a-z0-9] "
            "joined by '.', '_', '__' or '-'"
        )
    return ImageRef(domain, name, tag or None, digest or None)


async def check_image(
    reference: str,
    *,
    registry_url: str | None,
    timeout: float = 5.0,
    token: str | None = None,
) -> NetFinding:
    """Whether ``reference`` is a well-formed image reference and, when ``registry_url`` is
    given, whether that registry has it (OCI distribution API: ``HEAD /v2/<repo>/manifests/
    <tag or digest>``; the reference's own registry part is not contacted, ``registry_url``
    is where images are looked up).

    - pass: the registry answered 200 (the evidence shows Docker-Content-Digest), or the
      reference is well-formed and no registry is configured;
    - fail: the reference is malformed, or the registry answered 404 ("not in the registry");
    - unknown: the registry could not be reached, timed out, answered 5xx or anything else
      that says nothing about the image (401/403 after authentication, 429, …).

    ``token`` is sent as ``Authorization: Bearer``. On a 401 with a ``Bearer realm=…``
    challenge the anonymous token flow runs once (GET realm?service=…&scope=repository:
    <repo>:pull, with no credentials: the realm is named by the server and must not be sent
    the caller's token) and the HEAD is retried with the token it returns. Neither token ever
    appears in the evidence, and nothing is raised.
    """
    started = time.monotonic()
    try:
        ref = parse_image_reference(reference)
    except ValueError as exc:
        # The reason first: a long reference would push it past the one-line limit.
        return finding("fail", f"malformed image reference: {exc} (in {reference!r})", started)
    if registry_url is None:
        return finding("pass", f"{ref} is well-formed (no registry configured)", started)
    if token is not None and not _BEARER_TOKEN.fullmatch(token):
        # Not quoted: a token with a typo in it is still mostly the secret.
        return finding("unknown", "the registry token is not a valid bearer token", started)
    try:
        base = httpx.URL(registry_url.rstrip("/"))
        if base.scheme not in ("http", "https") or not base.host:
            raise httpx.InvalidURL("not an http(s) URL")
    except httpx.InvalidURL:
        return finding("unknown", "the registry URL is not a valid http(s) URL", started)
    # Host and port only: the configured URL may carry credentials in its userinfo.
    where = f"{base.host}:{base.port}" if base.port else base.host
    # A password in the registry URL's userinfo is as secret as the token.
    secrets: list[str | None] = [token, base.password or None]
    try:
        async with asyncio.timeout(timeout):
            state, evidence = await _lookup(base, ref, token, timeout, secrets)
    except (TimeoutError, httpx.TimeoutException):
        state, evidence = "unknown", f"registry {where} did not answer within {timeout:g}s"
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        state, evidence = "unknown", f"cannot reach registry {where}: {reason}"
    return finding(state, evidence, started, secrets)


async def _lookup(
    base: httpx.URL, ref: ImageRef, token: str | None, timeout: float, secrets: list[str | None]
) -> tuple[NetState, str]:
    url = f"{base}/v2/{ref.repository}/manifests/{ref.manifest_reference}"
    headers = {"Accept": _MANIFEST_ACCEPT}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with httpx.AsyncClient(
        verify=client_ssl_context(True),
        timeout=httpx.Timeout(timeout),
        # Registries redirect to mirrors and CDNs; httpx drops Authorization on a redirect to
        # another origin, so a token never follows one.
        follow_redirects=True,
        # Same reasoning as the health prober: no proxy or SSL_CERT_FILE from the shell.
        trust_env=False,
    ) as client:
        response = await client.head(url, headers=headers)
        if response.status_code == 401:
            challenge = _bearer_challenge(response.headers.get_list("www-authenticate"))
            if challenge is not None:
                anonymous = await _anonymous_token(client, challenge, ref.repository)
                if isinstance(anonymous, tuple):
                    return anonymous
                secrets.append(anonymous)
                headers["Authorization"] = f"Bearer {anonymous}"
                response = await client.head(url, headers=headers)
    return _judge_manifest(response.status_code, response.headers, ref, token is not None)


def _bearer_challenge(values: list[str]) -> dict[str, str] | None:
    """The parameters of the first ``Bearer`` challenge among WWW-Authenticate values."""
    for value in values:
        scheme, _, params = value.strip().partition(" ")
        if scheme.lower() != "bearer":
            continue
        found = {
            m[1].lower(): m[2] if m[2] is not None else m[3]
            for m in _CHALLENGE_PARAM.finditer(params)
        }
        if found.get("realm"):
            return found
    return None


async def _anonymous_token(
    client: httpx.AsyncClient, challenge: dict[str, str], repository: str
) -> str | tuple[NetState, str]:
    """A pull token from the challenge's realm, or the finding to report instead."""
    realm = httpx.URL(challenge["realm"])
    if realm.scheme not in ("http", "https") or not realm.host:
        return "unknown", "registry's Bearer challenge names no usable token realm"
    params = {"scope": f"repository:{repository}:pull"}
    if challenge.get("service"):
        params["service"] = challenge["service"]
    response = await client.get(realm, params=params)
    if response.status_code != 200:
        return "unknown", (
            f"registry requires credentials: anonymous token refused ({response.status_code})"
        )
    try:
        body = json.loads(response.content)
    except ValueError:
        return "unknown", "registry's token endpoint answered something other than JSON"
    # Docker's token spec names it "token"; OAuth2-style servers send "access_token".
    issued = (body.get("token") or body.get("access_token")) if isinstance(body, dict) else None
    if not isinstance(issued, str) or not _BEARER_TOKEN.fullmatch(issued):
        return "unknown", "registry's token endpoint answered without a usable token"
    return issued


def _judge_manifest(
    status: int, headers: httpx.Headers, ref: ImageRef, had_token: bool
) -> tuple[NetState, str]:
    wanted = (
        f"{ref.repository}:{ref.manifest_reference}"
        if not ref.digest
        else (f"{ref.repository}@{ref.digest}")
    )
    if status == 200:
        digest = headers.get("docker-content-digest")
        return "pass", (
            f"{wanted} found ({digest})" if digest else f"{wanted} found (no digest header)"
        )
    if status == 404:
        return "fail", f"{wanted} is not in the registry"
    if status == 401:
        who = "refused the token" if had_token else "requires credentials"
        return "unknown", f"registry {who} (401) for {ref.repository}"
    if status == 403:
        return "unknown", f"registry denied access (403) to {ref.repository}"
    return "unknown", f"registry answered {status} for {wanted}"

"""One worker thread's connections to image servers: urllib3 pools, cookies, the environment.

Image downloads talk to urllib3 directly. requests wraps every request in layers a
download does not need (merged settings, a prepared request, a response object, two cookie
passes): with two images decoding on two cores they cost 0.8 ms of CPU per image of the
2.0 ms a 1.3 MB download took, a share of the cores the codec then lacks. What requests did
for imgdesk stays, done once per origin where it can be: the proxies and NO_PROXY of the
environment, its CA bundle (``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE``, else certifi's),
``~/.netrc`` credentials, the URL's normalisation (IDNA host, percent-encoding) and cookies
kept across redirect hops.
"""

from __future__ import annotations

import http.client
import http.cookiejar
import os
import urllib.request
from dataclasses import dataclass
from typing import Any, Self, cast
from urllib.parse import urlsplit

import requests.models
import requests.utils
import urllib3

from imgdesk.core.errors import ErrorCode, ImageError

# One session serves one worker thread, so it never holds more than one connection at a
# time; a few per host and a few hosts keep warm connections without hoarding sockets.
_POOL_HOSTS = 8
_POOL_PER_HOST = 2


@dataclass(frozen=True)
class _Origin:
    """How requests to one scheme://host:port go: through which pool, with which login."""

    pool: urllib3.PoolManager
    authorization: str | None


class ImageSession:
    """Connections, cookies and the environment of one worker thread (see the module).

    The environment is read once per origin: a running imgdesk's does not change, and
    reading it cost 0.1 ms per request. A new session reads it again.
    """

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = dict(headers)
        self.cookies = http.cookiejar.CookieJar()
        self._ca_bundle = (
            os.environ.get("REQUESTS_CA_BUNDLE")
            or os.environ.get("CURL_CA_BUNDLE")
            or requests.utils.DEFAULT_CA_BUNDLE_PATH
        )
        self._pools: dict[str | None, urllib3.PoolManager] = {}  # by proxy URL; None: direct
        self._origins: dict[tuple[str, str], _Origin] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every pooled connection."""
        for pool in self._pools.values():
            pool.clear()
        self._pools.clear()
        self._origins.clear()

    def get(
        self, url: str, headers: dict[str, str], timeout: urllib3.Timeout
    ) -> urllib3.BaseHTTPResponse:
        """Send a GET for ``url`` and return the response with its body still unread.

        Never follows a redirect, never retries. The caller ends the response with
        :func:`finish`.

        Raises:
            requests.exceptions.RequestException: the URL cannot be requested (invalid).
            urllib3.exceptions.HTTPError: the connection or the exchange failed.
            ImageError: the environment's proxy cannot be used.
        """
        prepared = requests.models.PreparedRequest()
        prepared.prepare_url(url, None)  # IDNA host, percent-encoding, as requests sent it
        target = prepared.url or url
        origin = self._origin(target)
        sent = {**self.headers, **headers}
        authorization = _userinfo_login(target) or origin.authorization
        if authorization is not None:
            sent["Authorization"] = authorization
        cookie_request = urllib.request.Request(target)
        self.cookies.add_cookie_header(cookie_request)
        cookie = cookie_request.get_header("Cookie")
        if cookie:
            sent["Cookie"] = cookie
        response = origin.pool.urlopen(
            "GET",
            target,
            headers=sent,
            preload_content=False,
            decode_content=False,
            redirect=False,
            retries=False,
            timeout=timeout,
        )
        set_cookies = response.headers.getlist("Set-Cookie")
        if set_cookies:
            # The jar reads only ``info()`` of what it is given (as of urllib's responses).
            headers_only = cast(http.client.HTTPResponse, _CookieHeaders(set_cookies))
            self.cookies.extract_cookies(headers_only, cookie_request)
        return response

    def _origin(self, url: str) -> _Origin:
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        origin = self._origins.get(key)
        if origin is None:
            proxy = requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url))
            login = requests.utils.get_netrc_auth(url)
            authorization = _basic(*login) if login is not None else None
            origin = self._origins[key] = _Origin(self._pool(proxy), authorization)
        return origin

    def _pool(self, proxy: str | None) -> urllib3.PoolManager:
        if proxy is not None:
            proxy = requests.utils.prepend_scheme_if_needed(proxy, "http")
        pool = self._pools.get(proxy)
        if pool is None:
            pool = self._pools[proxy] = self._new_pool(proxy)
        return pool

    def _new_pool(self, proxy: str | None) -> urllib3.PoolManager:
        certificates = "ca_cert_dir" if os.path.isdir(self._ca_bundle) else "ca_certs"
        options: dict[str, Any] = {
            "num_pools": _POOL_HOSTS,
            "maxsize": _POOL_PER_HOST,
            certificates: self._ca_bundle,
        }
        if proxy is None:
            return urllib3.PoolManager(**options)
        if proxy.lower().startswith("socks"):
            try:
                from urllib3.contrib.socks import SOCKSProxyManager
            except ImportError as exc:
                raise ImageError(
                    ErrorCode.CONNECTION,
                    "The environment names a SOCKS proxy, which needs the PySocks package "
                    "(pip install PySocks).",
                ) from exc
            return SOCKSProxyManager(proxy, **options)
        proxy_headers = {}
        username, password = requests.utils.get_auth_from_url(proxy)
        if username:
            proxy_headers = {"Proxy-Authorization": _basic(username, password)}
        return urllib3.ProxyManager(proxy, proxy_headers=proxy_headers, **options)


def _userinfo_login(url: str) -> str | None:
    """The Authorization of a URL's ``user:password@``, as requests sent it; None if none."""
    username, password = requests.utils.get_auth_from_url(url)
    return _basic(username, password) if username or password else None


def _basic(username: str, password: str) -> str:
    return urllib3.util.make_headers(basic_auth=f"{username}:{password}")["authorization"]


def finish(response: urllib3.BaseHTTPResponse, *, read_whole: bool) -> None:
    """Hand the connection back for the next request, or close it if the body was left unread.

    A connection with unread bytes cannot carry another request (what requests' ``close``
    did for a response whose content was not consumed).
    """
    if not read_whole:
        response.close()
    response.release_conn()


class _CookieHeaders:
    """The Set-Cookie headers of a response, shaped as ``CookieJar.extract_cookies`` reads."""

    def __init__(self, values: list[str]) -> None:
        self._message = http.client.HTTPMessage()
        for value in values:
            self._message["Set-Cookie"] = value

    def info(self) -> http.client.HTTPMessage:
        return self._message

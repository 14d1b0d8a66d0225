"""A client of the HTTP publish endpoint, using only the standard library.

Publish from any Python process (a cron job, another service, a script on a laptop) without Django or a channel
layer connection::

    from hypergen_ws.client import PublishClient

    client = PublishClient("https://example.com/hypergen_ws/", key=os.environ["HYPERGEN_WS_PUBLISH_KEY"])
    client.send("hgws.notifications.listen", {"text": "Deploy finished"})
    client.command_to_consumer("chat.send_message", [["hypergen.append", "messages", "<li>hi</li>"]],
                               kwargs={"room_name": "vip"})
    client.stats()

``url`` is where ``hypergen_ws.urls`` is included (``.../hypergen_ws/``); a URL ending in ``publish/`` is
accepted too. A refused request raises :class:`PublishError` with the server's explanation.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

__all__ = ["PublishClient", "PublishError"]


class PublishError(Exception):
    """A publish or stats request that failed; ``str()`` says what was wrong and how to fix it.

    ``status`` is the HTTP status (``None`` when the server was not reached); ``error`` the server's
    ``{"error": ...}`` text, when it sent one.
    """

    def __init__(self, message: str, *, status: int | None = None, error: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error


class PublishClient:
    """Publishes to groups through a server's ``publish/`` endpoint with an access key."""

    def __init__(self, url: str, key: str, timeout: float = 10) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"url must be an http(s) URL like https://example.com/hypergen_ws/, not {url!r}.")
        if not isinstance(key, str) or not key:
            raise ValueError("key is empty: pass one of the server's HYPERGEN_WS['PUBLISH_KEYS'].")
        base = url if url.endswith("/") else url + "/"
        for endpoint in ("publish/", "stats/"):
            if base.endswith("/" + endpoint):
                base = base[: -len(endpoint)]
        self.base_url = base
        self.key = key
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"<PublishClient {self.base_url}>"

    # ---- publishing ------------------------------------------------------------------------------------------
    def send(self, group: str, data: Any) -> dict[str, Any]:
        """Send ``data`` (JSON) to every client in ``group`` as ``{"type": "message", "data": data}``."""
        return self.publish({"group": group, "data": data})

    def command(self, group: str, commands: list[list[Any]]) -> dict[str, Any]:
        """Send commands (``[["hypergen.append", "messages", "<li>hi</li>"]]``) to every client in ``group``."""
        return self.publish({"group": group, "commands": commands})

    def send_to_consumer(self, label: str, data: Any, kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
        """Like :meth:`send`, to the group of consumer ``label`` (``"chat.send_message"``) for URL ``kwargs``."""
        return self.publish({"consumer": label, "kwargs": kwargs or {}, "data": data})

    def command_to_consumer(self, label: str, commands: list[list[Any]],
                            kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
        """Like :meth:`command`, to the group of consumer ``label`` for URL ``kwargs``."""
        return self.publish({"consumer": label, "kwargs": kwargs or {}, "commands": commands})

    def publish(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST a raw publish request body; returns the server's answer, e.g. ``{"published": "message", ...}``."""
        try:
            encoded = json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise TypeError(f"The data must be JSON (dict, list, str, int, float, bool, None): {exc}.") from exc
        return self._request("POST", "publish/", encoded)

    def stats(self, per_process: bool = False) -> dict[str, Any]:
        """The traffic counters of the server (see :func:`hypergen_ws.get_stats`): on Redis, of every live server
        process, summed; ``per_process=True`` adds each process's own tables."""
        return self._request("GET", "stats/?per_process=1" if per_process else "stats/")

    # ---- HTTP ------------------------------------------------------------------------------------------------
    def _request(self, method: str, path: str, body: bytes | None = None) -> dict[str, Any]:
        url = self.base_url + path
        headers = {"Authorization": f"Bearer {self.key}", "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=body, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (http/https only)
                payload = response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            raise self._refused(url, exc.code, exc.read()) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise PublishError(f"Could not reach {url}: {reason}. Is the server running and the URL right?") from None
        try:
            answer: dict[str, Any] = json.loads(payload)
            return answer
        except ValueError:
            raise PublishError(f"{url} answered {status} with a body that is not JSON; is it the hypergen_ws "
                               "endpoint (path('hypergen_ws/', include('hypergen_ws.urls')))?", status=status) from None

    @staticmethod
    def _refused(url: str, status: int, payload: bytes) -> PublishError:
        try:
            error = json.loads(payload).get("error")
        except (ValueError, AttributeError):
            error = None
        if isinstance(error, str):
            return PublishError(f"{status}: {error}", status=status, error=error)
        hint = (" Is path('hypergen_ws/', include('hypergen_ws.urls')) in the server's urls.py, and the URL the "
                "one it is included at?" if status == 404 else "")
        return PublishError(f"{url} answered {status} without an error message.{hint}", status=status)

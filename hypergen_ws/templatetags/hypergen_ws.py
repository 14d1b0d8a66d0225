"""Template tags: ``{% load hypergen_ws %}``, then ``{% hypergen_ws_script %}``, ``{% consumer_url %}`` and
``{% hypergen_ws_token %}``."""
from __future__ import annotations

from typing import Any

from django import template
from django.templatetags.static import static
from django.utils.html import format_html

from ..core import conf, registry
from ..core.identity import issue_token
from ..decorators import get_consumer

register = template.Library()


@register.simple_tag(takes_context=True)
def hypergen_ws_token(context: template.Context, max_age: float | None = None) -> str:
    """A connection token (:func:`hypergen_ws.issue_token`) for the user of the page's request, or ``""`` for an
    anonymous user: ``hypergen.websocket.open(url, {token: "{% hypergen_ws_token %}"})``, for a page whose
    sockets go to another domain (docs/clients.rst). Needs ``django.template.context_processors.request``."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return ""
    return issue_token(user, max_age)


@register.simple_tag
def hypergen_ws_script() -> str:
    """The ``<script>`` tag that loads the JavaScript client; with ``data-ping-interval`` and ``data-ping-timeout``
    (seconds, or ``off``) when ``PING_INTERVAL`` or ``PING_TIMEOUT`` differ from their defaults, so that the
    client expects the server's pings when the server sends them (docs/javascript.rst)."""
    interval, timeout = conf.get("PING_INTERVAL"), conf.get("PING_TIMEOUT")
    if interval == conf.DEFAULTS["PING_INTERVAL"] and timeout == conf.DEFAULTS["PING_TIMEOUT"]:
        return format_html('<script src="{}"></script>', static("hypergen_ws/hypergen-ws.js"))
    return format_html('<script src="{}" data-ping-interval="{}" data-ping-timeout="{}"></script>',
                       static("hypergen_ws/hypergen-ws.js"), "off" if interval is None else _seconds(interval),
                       _seconds(timeout))


def _seconds(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


@register.simple_tag
def consumer_url(label: str, *args: Any, **kwargs: Any) -> str:
    """The websocket URL path of the consumer ``label`` for these URL kwargs: ``{% consumer_url "chat.send_message"
    room_name=room.slug %}`` (or ``{% consumer_url "chat.send_message" room.slug %}``, values in the route's
    order) renders ``/ws/chat/send_message/lobby/``; the client makes it ``ws(s)://``."""
    try:
        spec = get_consumer(label)
    except LookupError:
        registry.discover()  # a page rendered before anything imported the apps' consumers
        try:
            spec = get_consumer(label)
        except LookupError as exc:
            raise template.TemplateSyntaxError(f"{{% consumer_url %}}: {exc}") from None
    return spec.reverse(*args, **kwargs)

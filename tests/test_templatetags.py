"""{% hypergen_ws_script %} and {% consumer_url %}."""
from __future__ import annotations

import pytest
from django.template import Context, Template, TemplateSyntaxError


def render(source: str, **context) -> str:
    return Template("{% load hypergen_ws %}" + source).render(Context(context))


def test_script_tag():
    assert render("{% hypergen_ws_script %}") == '<script src="/static/hypergen_ws/hypergen-ws.js"></script>'


def test_script_tag_tells_the_client_a_heartbeat_that_is_not_the_default(settings):
    settings.HYPERGEN_WS = {"PING_INTERVAL": 60}
    assert render("{% hypergen_ws_script %}") == ('<script src="/static/hypergen_ws/hypergen-ws.js" '
                                                  'data-ping-interval="60" data-ping-timeout="10"></script>')
    settings.HYPERGEN_WS = {"PING_INTERVAL": None, "PING_TIMEOUT": 2.5}
    assert 'data-ping-interval="off" data-ping-timeout="2.5"' in render("{% hypergen_ws_script %}")


def test_consumer_url_by_label_and_kwargs():
    assert render('{% consumer_url "chat.send_message" room_name=slug %}', slug="vip") == "/ws/chat/send_message/vip/"


def test_consumer_url_takes_values_by_position():
    assert render('{% consumer_url "chat.send_message" slug %}', slug="vip") == "/ws/chat/send_message/vip/"


def test_unknown_label_lists_known_ones():
    with pytest.raises(TemplateSyntaxError, match="Known consumers: .*chat.send_message") as raised:
        render('{% consumer_url "chat.nope" %}')
    assert ("Consumers are found in the consumers and views modules of the installed apps (e.g. chat.consumers)"
            in str(raised.value)), "it says where consumers are looked for"

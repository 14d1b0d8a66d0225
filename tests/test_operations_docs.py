"""The code of docs/operations.rst, from the page: the settings, the Prometheus scrape configurations and alert
rules, the JSON logging (tests/test_logs.py runs that one)."""
from __future__ import annotations

import re

import pytest
import yaml
from django.test import AsyncClient

from hypergen_ws.core import conf
from hypergen_ws.checks import check_metrics, check_publish_keys
from tests.support import pages

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.http_urls")]

PAGE = "operations.rst"
KEY = "operations-key-0123456789abcdef"


def page_settings() -> dict:
    """The names the page's parts of ``mysite/settings.py`` set (HYPERGEN_WS, LOGGING), run in page order."""
    namespace: dict = {}
    for block in pages.blocks(PAGE):
        if block.path == "mysite/settings.py":
            exec(block.compile(), namespace)  # noqa: S102 - the page's code
    return namespace


def site_settings(monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("HYPERGEN_WS_PUBLISH_KEY", KEY)
    return page_settings()["HYPERGEN_WS"]


def yaml_file(index: int) -> dict:
    """The page's YAML blocks, in order: the scrape configuration, its multiprocess variant, the alert rules."""
    [*found] = (block for block in pages.blocks(PAGE) if block.language == "yaml")
    assert [block.path for block in found] == ["prometheus.yml", "prometheus.yml", "alerts.yml"]
    return yaml.safe_load(found[index].text)


def test_the_settings_are_known_keys_that_pass_the_checks(settings, monkeypatch):
    settings.HYPERGEN_WS = site_settings(monkeypatch)
    assert set(settings.HYPERGEN_WS) <= set(conf.DEFAULTS)
    assert conf.unknown_keys() == []
    assert check_metrics() == [] and check_publish_keys() == []


def exposed_names(body: str) -> set[str]:
    """Every sample name the exposition can carry, from its ``# TYPE`` lines."""
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", body, re.M):
        names |= {"counter": {name, name.removesuffix("_total") + "_total"},
                  "histogram": {name + s for s in ("_bucket", "_sum", "_count")}}.get(kind, {name})
    return names


async def scrape(job: dict) -> str:
    assert job["authorization"]["type"] == "Bearer"
    answer = await AsyncClient().get(job["metrics_path"], headers={"Authorization": f"Bearer {KEY}"})
    assert answer.status_code == 200, answer.content
    return answer.content.decode()


@pytest.mark.parametrize("index", [0, 1], ids=["per-process", "multiprocess"])
async def test_the_scrape_configurations_reach_the_metrics(settings, monkeypatch, index):
    settings.HYPERGEN_WS = site_settings(monkeypatch)
    (job,) = yaml_file(index)["scrape_configs"]
    assert job["static_configs"][0]["targets"]
    body = await scrape(job)
    assert "hypergen_ws_connections" in exposed_names(body)


async def test_the_alert_rules_use_metrics_that_exist(settings, monkeypatch):
    settings.HYPERGEN_WS = site_settings(monkeypatch)
    (job,) = yaml_file(0)["scrape_configs"]
    names = exposed_names(await scrape(job))
    (group,) = yaml_file(2)["groups"]
    used = {metric for rule in group["rules"] for metric in re.findall(r"hypergen_ws_\w+", rule["expr"])}
    assert len(used) == len(group["rules"]) and used <= names, used - names
    assert 'code="server_error"' in next(r["expr"] for r in group["rules"] if "hypergen_ws_errors_total" in r["expr"])

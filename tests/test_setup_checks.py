"""The checks for the usual mistakes of a new project (hypergen_ws.setup_checks): each has an id, a message and a
hint that names the fix."""
from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import CheckMessage, run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from hypergen_ws import NO_PERM_REQUIRED, Consumer, code_checks, consumer, setup_checks
from hypergen_ws.setup_checks import walk_websocket_routes
from tests import asgi_apps


def asgi_messages(settings: Any, app: str) -> list[CheckMessage]:
    settings.ASGI_APPLICATION = f"tests.asgi_apps.{app}"
    return setup_checks.check_asgi_application()


def test_the_demo_project_passes_every_check_including_deploy_and_database(db: None) -> None:
    assert setup_checks.check_asgi_application() == []
    assert setup_checks.check_origin_validator() == []
    assert code_checks.check_permissions_exist(databases=["default"]) == []
    assert code_checks.check_permissions_exist() == []
    assert code_checks.check_consumer_modules() == []


def test_a_complete_asgi_application_passes(settings: Any) -> None:
    assert asgi_messages(settings, "complete") == []


@pytest.mark.parametrize("app, why", [
    ("startproject", "is Django's ASGIHandler, as `startproject` wrote asgi.py"),
    ("http_only", "is a ProtocolTypeRouter without a 'websocket' entry"),
])
def test_websockets_routed_nowhere(settings: Any, app: str, why: str) -> None:
    [error] = asgi_messages(settings, app)
    assert error.id == "hypergen_ws.E042"
    assert error.msg.startswith(f"Websockets are routed nowhere: ASGI_APPLICATION 'tests.asgi_apps.{app}' {why}.")
    assert "Django can only handle ASGI/HTTP connections" in error.msg
    assert "'websocket': SameOriginValidator(AuthMiddlewareStack(URLRouter(autoconsumers())))" in str(error.hint)


def test_manage_py_check_fails_for_asgi_py_as_startproject_made_it(settings: Any) -> None:
    settings.ASGI_APPLICATION = "tests.asgi_apps.startproject"
    with pytest.raises(SystemCheckError, match=r"hypergen_ws\.E042"):
        call_command("check")


def test_no_asgi_application_setting(settings: Any) -> None:
    del settings.ASGI_APPLICATION
    [warning] = setup_checks.check_asgi_application()
    assert warning.id == "hypergen_ws.W040" and "ASGI_APPLICATION = 'mysite.asgi.application'" in str(warning.hint)


def test_an_asgi_application_that_cannot_be_imported(settings: Any) -> None:
    [error] = asgi_messages(settings, "missing")
    assert error.id == "hypergen_ws.E041"
    assert error.msg.startswith("ASGI_APPLICATION 'tests.asgi_apps.missing' cannot be loaded: ImportError: ")
    assert "point ASGI_APPLICATION to the 'application' object" in str(error.hint)


def test_consumers_that_need_a_user_without_auth_middleware(settings: Any) -> None:
    [error] = asgi_messages(settings, "no_auth")
    assert error.id == "hypergen_ws.E044"
    # chat.send_message needs chat.can_chat and hypergen_ws's dashboard a staff user; counter.increment is
    # NO_PERM_REQUIRED: only the first two are named.
    assert error.msg == ("The consumers chat.send_message, hypergen_ws.dashboard (hypergen_ws.dashboard is the "
                         "consumer of the dashboard page that hypergen_ws.urls serves to staff users) check the user's "
                         "permissions, but no authentication middleware is in front of them in ASGI_APPLICATION "
                         "'tests.asgi_apps.no_auth': every user is anonymous, and every socket is refused with 4401.")
    assert "AuthMiddlewareStack(URLRouter(...))" in str(error.hint)


def test_the_dashboards_consumer_counts_only_where_the_dashboard_is_served(settings: Any) -> None:
    """A project that never included hypergen_ws.urls never asked for the dashboard: no check names it."""
    settings.ROOT_URLCONF = "tests.commit_urls"  # no hypergen_ws.urls
    [error] = asgi_messages(settings, "no_auth")
    assert error.id == "hypergen_ws.E044" and error.msg.startswith("The consumer chat.send_message checks the user's")
    assert "dashboard" not in error.msg
    settings.ASGI_APPLICATION = "tests.asgi_apps.no_origin_check"
    assert all("dashboard" not in m.msg for m in setup_checks.check_origin_validator())


def test_a_project_that_never_asked_for_the_dashboard_hears_nothing_of_it(settings: Any) -> None:
    """No AuthMiddlewareStack and no hypergen_ws.urls: no check of any kind, deploy checks included, names the
    dashboard's consumer, which autoconsumers() routes all the same."""
    settings.ROOT_URLCONF = "tests.commit_urls"  # no hypergen_ws.urls
    settings.ASGI_APPLICATION = "tests.asgi_apps.no_auth"
    assert setup_checks.DASHBOARD_LABEL in {r.consumer.label for r in walk_websocket_routes(asgi_apps.no_auth).routes
                                            if r.consumer is not None}, "routed"
    messages = run_checks(include_deployment_checks=True)
    assert "hypergen_ws.E044" in {m.id for m in messages}, "chat.send_message still needs a user"
    assert [m for m in messages if "dashboard" in f"{m.msg} {m.hint} {m.obj}"] == []


def test_authentication_middleware_of_ones_own_counts(settings: Any) -> None:
    assert asgi_messages(settings, "own_auth") == []


def test_consumers_without_a_route(settings: Any) -> None:
    [warning] = asgi_messages(settings, "chat_only")
    assert warning.id == "hypergen_ws.W043"
    assert warning.msg.startswith("The consumers counter.")
    assert "chat." not in warning.msg.split(" have no websocket route")[0]
    assert "hypergen_ws.dashboard" not in warning.msg, "the dashboard's consumer is optional"
    assert "URLRouter(autoconsumers())" in str(warning.hint)


def test_a_wrapper_the_walk_cannot_see_through_reports_nothing(settings: Any) -> None:
    walk = walk_websocket_routes(asgi_apps.opaque)
    assert walk.websocket and not walk.complete and walk.routes == []
    assert asgi_messages(settings, "opaque") == []


def test_the_walk_sees_every_routed_consumer_and_its_wrappers() -> None:
    walk = walk_websocket_routes(asgi_apps.complete)
    assert walk.complete
    labels = {route.consumer.label for route in walk.routes if route.consumer is not None}
    assert {"chat.send_message", "counter.increment", "notifications.listen"} <= labels
    assert all(route.has_auth() and route.has_origin_check() for route in walk.routes)


def test_deploy_check_wants_an_origin_validator(settings: Any) -> None:
    settings.ASGI_APPLICATION = "tests.asgi_apps.no_origin"
    [warning] = setup_checks.check_origin_validator()
    assert warning.id == "hypergen_ws.W045"
    assert warning.msg.startswith("No Origin check is in front of the consumers chat.send_message, counter.")
    assert "cross-site websocket hijacking" in warning.msg and "SameOriginValidator" in str(warning.hint)
    assert "hypergen_ws.W045" in {m.id for m in run_checks(include_deployment_checks=True)}
    assert "hypergen_ws.W045" not in {m.id for m in run_checks()}, "a deploy check only"


def test_deploy_check_wants_scheme_and_port_checked_too(settings: Any) -> None:
    settings.ASGI_APPLICATION = "tests.asgi_apps.hostnames_only"
    [warning] = setup_checks.check_origin_validator()
    assert warning.id == "hypergen_ws.W047" and "http://localhost:1234" in warning.msg
    assert "SameOriginValidator" in str(warning.hint)
    for fine in ("complete", "testproject.asgi.application"):
        settings.ASGI_APPLICATION = fine if "." in fine else f"tests.asgi_apps.{fine}"
        assert setup_checks.check_origin_validator() == [], fine


def test_deploy_check_warns_about_cookie_sockets_let_in_without_an_origin(settings: Any) -> None:
    settings.ASGI_APPLICATION = "tests.asgi_apps.missing_allowed"
    [warning] = setup_checks.check_origin_validator()
    assert warning.id == "hypergen_ws.W048" and "allow_missing=True" in warning.msg
    assert "Authorization: Bearer" in str(warning.hint)
    assert "hypergen_ws.W048" in {m.id for m in run_checks(include_deployment_checks=True)}
    assert "hypergen_ws.W048" not in {m.id for m in run_checks()}, "a deploy check only"


def consumer_in_the_chat_app(perm: object, name: str = "misspelled") -> Consumer:
    def misspelled(consumer: Any, request: Any) -> None:
        pass

    misspelled.__module__ = "tests.perm_check"
    misspelled.__name__ = misspelled.__qualname__ = name
    return consumer(perm=perm, app_label="chat")(misspelled)


@pytest.mark.parametrize("perm, hint", [
    ("chat.can_chatt", "Did you mean perm='chat.can_chat'?"),
    (["chat.can_chat", "shop.buy"], "No installed app has the label 'shop'"),
    ("chat.frobnicate", "Declare it in a model's Meta.permissions"),
])
@pytest.mark.parametrize("databases", [None, ["default"]], ids=["plain", "database"])
def test_a_perm_that_does_not_exist_is_reported_by_a_plain_check(db: None, perm: str | list[str], hint: str,
                                                                 databases: list[str] | None) -> None:
    """The models declare their permissions before any migration: no --database needed."""
    spec = consumer_in_the_chat_app(perm)
    errors = [m for m in code_checks.check_permissions_exist(databases=databases) if m.obj == spec.label]
    [error] = errors
    assert error.id == "hypergen_ws.E046"
    wrong = perm if isinstance(perm, str) else perm[1]
    assert str(error).startswith(f"chat.misspelled: (hypergen_ws.E046) requires the permission {wrong!r}, which "
                                 "does not exist: every user except superusers is refused (4403).")
    assert hint in str(error.hint)
    assert ("--database default' finds it there" in str(error.hint)) is (databases is None)
    assert "0x" not in str(error), "the consumer is named by its label"


def test_a_misspelt_perm_fails_manage_py_check(db: None) -> None:
    consumer_in_the_chat_app("chat.can_chatt")
    with pytest.raises(SystemCheckError, match=r"chat\.misspelled: \(hypergen_ws\.E046\) requires the permission "
                                               r"'chat\.can_chatt'"):
        call_command("check")


def test_declared_and_stored_permissions_pass(db: None) -> None:
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType

    declared = consumer_in_the_chat_app(["chat.can_chat", "auth.view_user"], "declared")
    Permission.objects.create(codename="made_by_hand", name="By hand",
                              content_type=ContentType.objects.get(app_label="chat", model="message"))
    stored = consumer_in_the_chat_app("chat.made_by_hand", "stored")
    public = consumer_in_the_chat_app(NO_PERM_REQUIRED, "public")
    objects = {m.obj for m in code_checks.check_permissions_exist(databases=["default"])}
    assert not objects & {declared.label, stored.label, public.label}
    plain = {m.obj for m in code_checks.check_permissions_exist()}
    assert stored.label in plain and not plain & {declared.label, public.label}, "the database, with --database only"

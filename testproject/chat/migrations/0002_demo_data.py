"""Demo data: the rooms "lobby" and "vip", and three demo accounts.

These accounts exist only to try the demo project; their passwords equal their usernames:

* alice / alice and bob / bob have ``chat.can_chat`` and may post (and announce);
* eve / eve has no permission: she can read a room's stored messages but her socket is refused (close code 4403).

Never run this migration against a database that real people use.
"""
from __future__ import annotations

from django.contrib.auth.hashers import make_password
from django.db import migrations

ROOMS = [("lobby", "Lobby"), ("vip", "VIP lounge")]
CHATTERS = ["alice", "bob"]
OTHERS = ["eve"]


def create_demo_data(apps, schema_editor):
    Room = apps.get_model("chat", "Room")
    User = apps.get_model("auth", "User")
    Permission = apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")

    for slug, name in ROOMS:
        Room.objects.get_or_create(slug=slug, defaults={"name": name})

    # Permissions are normally created after all migrations ran (post_migrate); create this one now so the demo
    # users can get it. Django's own post_migrate step finds it and leaves it alone.
    message_type, _ = ContentType.objects.get_or_create(app_label="chat", model="message")
    can_chat, _ = Permission.objects.get_or_create(
        content_type=message_type, codename="can_chat", defaults={"name": "Can post messages in chat rooms"}
    )

    for username in CHATTERS + OTHERS:
        user, created = User.objects.get_or_create(
            username=username, defaults={"password": make_password(username), "email": f"{username}@example.com"}
        )
        if username in CHATTERS:
            user.user_permissions.add(can_chat)


def remove_demo_data(apps, schema_editor):
    apps.get_model("auth", "User").objects.filter(username__in=CHATTERS + OTHERS).delete()
    apps.get_model("chat", "Room").objects.filter(slug__in=[slug for slug, _ in ROOMS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_demo_data, remove_demo_data)]

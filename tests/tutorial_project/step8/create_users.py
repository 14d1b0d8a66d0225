from django.contrib.auth.models import Permission, User

can_chat = Permission.objects.get(content_type__app_label="tchat", codename="can_chat")
for name in ["ann", "ben"]:
    user = User.objects.create_user(name, password=f"{name}-tutorial")
    user.user_permissions.add(can_chat)
User.objects.create_user("cy", password="cy-tutorial")  # may read, may not chat

from django.contrib.auth.models import Permission, User

can_chat = Permission.objects.get(content_type__app_label="chat", codename="can_chat")
ann = User.objects.create_user("ann", password="ann-quickstart")
ann.user_permissions.add(can_chat)
User.objects.create_user("bob", password="bob-quickstart")  # logged in, but may not chat

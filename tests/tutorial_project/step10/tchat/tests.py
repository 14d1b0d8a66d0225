from django.contrib.auth.models import Permission, User
from django.test import TestCase, TransactionTestCase

from hypergen_ws.testing import ConsumerCommunicator, assert_published, reset

from .consumers import send_message
from .models import Message


def make_chatter(name):
    user = User.objects.create_user(name)
    user.user_permissions.add(Permission.objects.get(codename="can_chat"))
    return user


class ChatTests(TransactionTestCase):
    def setUp(self):
        reset()  # no groups, history or channel layer left over from another test
        self.ann = make_chatter("ann")

    async def test_a_message_reaches_everyone_in_the_room(self):
        async with ConsumerCommunicator(send_message, user=self.ann, room_name="lobby") as ann, \
                ConsumerCommunicator(send_message, user=self.ann, room_name="lobby") as other_tab:
            result = await ann.call("Hello")
            [[name, target, html]] = result.commands
            self.assertEqual((name, target), ("hypergen.append", "messages"))
            self.assertIn("<b>ann</b> Hello", html)
            self.assertEqual(await other_tab.receive_commands(), result.commands)
        self.assertEqual(await Message.objects.filter(room="lobby").acount(), 1)

    async def test_only_chatters_may_connect(self):
        cy = await User.objects.acreate(username="cy")
        async with ConsumerCommunicator(send_message, user=cy, room_name="lobby") as socket:
            self.assertEqual(socket.close_code, 4403)  # permission denied
        async with ConsumerCommunicator(send_message, room_name="lobby") as socket:
            self.assertEqual(socket.close_code, 4401)  # not logged in


class AnnounceTests(TestCase):
    def test_the_view_publishes_to_the_room(self):
        self.client.force_login(make_chatter("ann"))
        room = send_message.group_name(room_name="lobby")
        with assert_published(room) as published:
            response = self.client.post("/chat/lobby/announce/", {"text": "Pizza"})
        self.assertEqual(response.status_code, 204)
        self.assertIn("📣 Pizza", published[0].commands[0][2])

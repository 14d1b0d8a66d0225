// A typed page script against hypergen-ws.d.ts: `tsc --strict --noEmit -p tests/ts` (scripts/test.py runs it).
// It must compile, and the lines marked @ts-expect-error must not.

const conn: hypergen.Connection = hypergen.websocket.open("/ws/chat/send_message/vip/", {
  callTimeout: 5000,
  getToken: async () => {
    const answer = await fetch("/hypergen_ws/token/");
    const body: { token: string; expires_at: number; expires_in: number } = await answer.json();
    return body.token;
  },
  onMessage: (data, c) => console.log(data, c.url),
  onState: (state, c, detail) => {
    if (state === "closed" && detail.code === 4401) location.assign("/accounts/login/");
  },
});

const off: () => void = conn.on("resync", (detail) => console.log(detail.reason, detail.seq ?? "none"));
conn.on("presence", (frame) => frame.users?.forEach((user) => console.log(user.username)));
conn.on("close", (detail) => console.log(detail.reconnect, detail.delay));
off();

async function post(text: string): Promise<number | string> {
  try {
    const reply = await conn.sendWithMeta({ source: "page" }, text);
    return reply.id;
  } catch (error) {
    const failure = error as hypergen.WebSocketError;
    return failure.code === "refused" ? failure.closeCode ?? 0 : failure.code;
  }
}
void post("hi");

hypergen.commands.register("chat.highlight", (id: string) => document.getElementById(id)?.classList.add("hl"));
hypergen.commands.execute([["hypergen.append", "messages", "<li>hi</li>"], ["chat.highlight", "m1"]]);
const isOpen: boolean = hypergen.websocket.connections().every((c) => c.state !== "closed");
const delay: number = hypergen.websocket.backoff(2, { backoffBase: 100 });
const other: hypergen.Client = hypergen.createClient({ random: () => 0.5 });
other.websocket.close("/ws/chat/send_message/vip/");
document.addEventListener("hypergen:websocket:state", (event) => console.log(event.detail.state, isOpen, delay));

// @ts-expect-error: getToken must return a token (a string), not a number
hypergen.websocket.open("/ws/x/", { getToken: () => 42 });
// @ts-expect-error: there is no "ping" event
conn.on("ping", () => undefined);
// @ts-expect-error: options are numbers
hypergen.websocket.open("/ws/y/", { callTimeout: "5s" });

// The heartbeat and offline detection: the server's settings, a probe, the "offline" state.
const watched = hypergen.websocket.open("/ws/z/", { pingInterval: 25000, pingTimeout: 10000 });
const probed: boolean = watched.probe();
const offline: boolean = watched.state === "offline" && probed;
const quiet: hypergen.Client = hypergen.createClient({ window: null, navigator: { onLine: offline } });
// @ts-expect-error: "asleep" is no state
const asleep: boolean = watched.state === "asleep";
console.log(quiet, asleep);

// Unit tests of the connection-token part of hypergen-ws.js (getToken, docs/clients.rst): run with `node --test`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FakeTimers, fakeWebSocketClass } from "./fakes.mjs";

const SCRIPT = new URL("../../hypergen_ws/static/hypergen_ws/hypergen-ws.js", import.meta.url);
await import(SCRIPT.href);
const hypergen = globalThis.hypergen;

function setup() {
  const timers = new FakeTimers();
  const { FakeWebSocket, sockets } = fakeWebSocketClass();
  const logs = { warn: [], error: [] };
  const console = { log() {}, warn: (...a) => logs.warn.push(a), error: (...a) => logs.error.push(a) };
  const client = hypergen.createClient({
    WebSocket: FakeWebSocket, setTimeout: timers.setTimeout, clearTimeout: timers.clearTimeout, now: timers.now,
    random: () => 0.5, location: { href: "https://app.example.com/" }, document: new EventTarget(), console,
  });
  return { ws: client.websocket, timers, sockets, logs };
}

const flush = () => new Promise((resolve) => setTimeout(resolve, 0));
const decode = (protocol) => Buffer.from(protocol.slice("hypergen-ws.bearer.".length), "base64url").toString();

test("getToken's token is offered as the bearer subprotocol, next to hypergen-ws", async () => {
  const { ws, sockets } = setup();
  let calls = 0;
  ws.open("wss://api.example.com/ws/chat/send_message/vip/", { getToken: async () => `tok-${++calls}/é+=` });
  assert.equal(sockets.length, 0, "no socket before the token is there");
  await flush();
  assert.equal(sockets.length, 1);
  const [plain, bearer] = sockets[0].protocols;
  assert.equal(plain, "hypergen-ws");
  assert.match(bearer, /^hypergen-ws\.bearer\.[A-Za-z0-9_-]+$/, "RFC 6455 token characters only");
  assert.equal(decode(bearer), "tok-1/é+=");
});

test("every reconnect asks for a fresh token, and an expiring token is refreshed on the open socket", async () => {
  const { ws, sockets, timers } = setup();
  const tokens = ["first", "second", "third"];
  const conn = ws.open("wss://api.example.com/ws/a/b/", { getToken: () => Promise.resolve(tokens.shift()) });
  await flush();
  sockets[0].serverOpen().serverSend({ type: "token", event: "expiring", expires_at: 1 });
  await flush();
  assert.deepEqual(sockets[0].sent, [{ type: "token", token: "second" }]);
  sockets[0].serverSend({ type: "token", event: "refreshed", expires_at: 2 });
  sockets[0].serverClose(1006);
  timers.advance(60000);
  await flush();
  assert.equal(decode(sockets[1].protocols[1]), "third");
  assert.equal(sockets.length, 2);
  conn.close();
});

test("a failing getToken is logged and retried with the backoff; a bad option is refused", async () => {
  const { ws, sockets, timers, logs } = setup();
  let fail = true;
  ws.open("wss://api.example.com/ws/c/d/", { getToken: async () => { if (fail) throw new Error("offline"); return "ok"; } });
  await flush();
  assert.equal(sockets.length, 0);
  assert.match(String(logs.error[0][0]), /getToken\(\) failed/);
  fail = false;
  timers.advance(60000);
  await flush();
  assert.equal(sockets.length, 1);
  assert.throws(() => ws.open("wss://api.example.com/ws/e/f/", { getToken: "token" }), /getToken must be an async function/);
});

test("without getToken an expiring token is only reported", () => {
  const { ws, sockets, logs } = setup();
  ws.open("wss://api.example.com/ws/g/h/");
  sockets[0].serverOpen().serverSend({ type: "token", event: "expiring", expires_at: 1 });
  assert.equal(sockets[0].protocols, undefined);
  assert.deepEqual(sockets[0].sent, []);
  assert.match(String(logs.warn.at(-1)[0]), /pass getToken/);
});

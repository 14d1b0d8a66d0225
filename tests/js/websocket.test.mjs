// Unit tests of the websocket part of hypergen-ws.js: run with `node --test tests/js/`.
// A fake WebSocket and fake timers are injected through hypergen.createClient(env).
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import vm from "node:vm";
import { FakeTimers, fakeWebSocketClass } from "./fakes.mjs";

const SCRIPT = new URL("../../hypergen_ws/static/hypergen_ws/hypergen-ws.js", import.meta.url);
await import(SCRIPT.href);
const hypergen = globalThis.hypergen;

function recordingConsole() {
  const logs = { log: [], warn: [], error: [] };
  return { logs, console: { log: (...a) => logs.log.push(a), warn: (...a) => logs.warn.push(a), error: (...a) => logs.error.push(a) } };
}

function setup({ href = "https://example.com/chat/", random = () => 0.5, env = {} } = {}) {
  const timers = new FakeTimers();
  const { FakeWebSocket, sockets } = fakeWebSocketClass();
  const { logs, console } = recordingConsole();
  const document = new EventTarget();
  const domEvents = [];
  for (const name of ["state", "message", "error"]) {
    document.addEventListener(`hypergen:websocket:${name}`, (e) => domEvents.push([e.type, e.detail]));
  }
  const client = hypergen.createClient({
    WebSocket: FakeWebSocket,
    setTimeout: timers.setTimeout,
    clearTimeout: timers.clearTimeout,
    now: timers.now,
    random,
    location: href === null ? null : { href },
    document,
    console,
    ...env,
  });
  return { client, ws: client.websocket, timers, sockets, logs, domEvents, last: () => sockets.at(-1) };
}

/** Collects the settlement of a promise without letting it go unhandled. */
function track(promise) {
  const result = { settled: false };
  promise.then(
    (value) => Object.assign(result, { settled: true, value }),
    (error) => Object.assign(result, { settled: true, error }),
  );
  return result;
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe("URL resolution", () => {
  test("a relative URL gets wss: on an https page", () => {
    const { ws } = setup({ href: "https://example.com/chat/" });
    assert.equal(ws.resolveUrl("/ws/chat/send/lobby/"), "wss://example.com/ws/chat/send/lobby/");
    assert.equal(ws.resolveUrl("room/"), "wss://example.com/chat/room/");
  });

  test("a relative URL gets ws: on an http page, port kept", () => {
    const { ws } = setup({ href: "http://localhost:8000/page" });
    assert.equal(ws.resolveUrl("/ws/x/"), "ws://localhost:8000/ws/x/");
  });

  test("an absolute ws(s) URL is kept; http(s) maps to ws(s); the fragment is dropped", () => {
    const { ws } = setup({ href: "https://example.com/" });
    assert.equal(ws.resolveUrl("ws://other:9000/ws/a/?q=1"), "ws://other:9000/ws/a/?q=1");
    assert.equal(ws.resolveUrl("wss://other/ws/a/"), "wss://other/ws/a/");
    assert.equal(ws.resolveUrl("http://other/ws/a/#x"), "ws://other/ws/a/");
  });

  test("bad URLs throw TypeErrors that say why", () => {
    const { ws } = setup();
    assert.throws(() => ws.resolveUrl("ftp://example.com/"), /not an http\(s\) or ws\(s\) URL/);
    assert.throws(() => ws.resolveUrl(""), TypeError);
    assert.throws(() => ws.open(42), TypeError);
    const noPage = setup({ href: null });
    assert.throws(() => noPage.ws.resolveUrl("/ws/x/"), /needs a page location/);
    assert.equal(noPage.ws.resolveUrl("ws://h/ws/x/"), "ws://h/ws/x/");
  });
});

describe("one connection per URL", () => {
  test("opening the same URL twice returns the same Connection and one socket", () => {
    const { ws, sockets } = setup({ href: "https://example.com/" });
    const seen = [];
    const a = ws.open("/ws/room/", { onMessage: (data) => seen.push(["a", data]) });
    const b = ws.open("wss://example.com/ws/room/", { onMessage: (data, conn) => seen.push(["b", data, conn === a]) });
    assert.equal(a, b);
    assert.equal(sockets.length, 1);
    assert.equal(a.url, "wss://example.com/ws/room/");
    assert.equal(ws.connection("/ws/room/"), a);
    assert.equal(ws.connection("/ws/other/"), undefined);
    sockets[0].serverOpen();
    sockets[0].serverSend({ type: "message", data: 1 });
    assert.deepEqual(seen, [["a", 1], ["b", 1, true]]);
  });

  test("after close the URL is forgotten and open() makes a new connection", () => {
    const { ws, sockets } = setup();
    const first = ws.open("/ws/a/");
    ws.close("/ws/a/");
    assert.equal(ws.connection("/ws/a/"), undefined);
    const second = ws.open("/ws/a/");
    assert.notEqual(first, second);
    assert.equal(sockets.length, 2);
    assert.equal(ws.close("/ws/unknown/"), false);
  });

  test("websocket.send() opens the connection when needed", () => {
    const { ws, sockets } = setup();
    track(ws.send("/ws/a/", "hi"));
    assert.equal(sockets.length, 1);
    assert.equal(ws.connection("/ws/a/").state, "connecting");
  });
});

describe("state and events", () => {
  test("state goes connecting -> open -> reconnecting -> open, on the connection and on document", () => {
    const { ws, timers, sockets, domEvents } = setup({ href: "https://example.com/" });
    const states = [];
    const conn = ws.open("/ws/a/", { onState: (state, c, detail) => states.push([state, detail.code, c === conn || c]) });
    assert.equal(conn.state, "connecting");
    sockets[0].serverOpen();
    assert.equal(conn.state, "open");
    sockets[0].serverClose(1006, "gone");
    assert.equal(conn.state, "reconnecting");
    timers.advance(1000);
    assert.equal(sockets.length, 2);
    assert.equal(conn.state, "reconnecting");
    sockets[1].serverOpen();
    assert.equal(conn.state, "open");
    assert.deepEqual(states.map((s) => s.slice(0, 2)), [["open", null], ["reconnecting", 1006], ["open", null]]);
    const domStates = domEvents.filter(([type]) => type === "hypergen:websocket:state").map(([, d]) => d);
    assert.deepEqual(domStates.map((d) => d.state), ["connecting", "open", "reconnecting", "open"]);
    assert.deepEqual(domStates[2], {
      url: "wss://example.com/ws/a/", state: "reconnecting", code: 1006, reason: "gone", beforeOpen: false,
    });
  });

  test("a socket refused at the handshake is said once in the console, and the page is told it never opened", () => {
    const { ws, sockets, timers, logs, domEvents } = setup();
    const closes = [];
    const conn = ws.open("/ws/a/", { onState: () => {} });
    conn.on("close", (d) => closes.push(d));
    sockets[0].serverClose(1006, "");  // what a browser sees of a handshake answered with 403
    assert.equal(conn.state, "reconnecting");
    const [, detail] = domEvents.filter(([type]) => type === "hypergen:websocket:state").at(-1);
    assert.equal(detail.beforeOpen, true);
    assert.equal(logs.warn.length, 1);
    assert.match(logs.warn[0][0], /^hypergen: the websocket to wss:\/\/example\.com\/ws\/a\/ closed before it opened \(code 1006\): the server refused the handshake \(an Origin it does not trust, a Host not in ALLOWED_HOSTS, a path with no consumer\) or cannot be reached\. The server's log says which; reconnecting meanwhile\.$/);
    timers.advance(1000);
    sockets[1].serverClose(1006, "");
    assert.equal(logs.warn.length, 1, "once");
    assert.deepEqual(closes.map((d) => d.beforeOpen), [true, true]);
    timers.advance(5000);
    sockets.at(-1).serverOpen().serverClose(1006, "");  // a socket that opened, then dropped: a plain reconnect
    timers.advance(30000);
    sockets.at(-1).serverClose(1006, "");  // a server down for a restart, after the page had been open
    assert.equal(logs.warn.length, 1, "nothing said once the connection had been open");
    assert.deepEqual(closes.slice(2).map((d) => d.beforeOpen), [false, true]);
  });

  test("open and close events carry the close code and the reconnect decision", () => {
    const { ws, sockets } = setup();
    const conn = ws.open("/ws/a/");
    const events = [];
    conn.on("open", (d) => events.push(["open", d.url]));
    conn.on("close", (d) => events.push(["close", d.code, d.reconnect, d.delay]));
    sockets[0].serverOpen();
    sockets[0].serverClose(1011);
    conn.close();
    assert.deepEqual(events, [["open", conn.url], ["close", 1011, true, 375], ["close", 1000, false, null]]);
  });

  test("message frames reach on('message'), onMessage and a DOM event", () => {
    const { ws, sockets, domEvents } = setup({ href: "http://h/" });
    const got = [];
    const conn = ws.open("/ws/a/", { onMessage: (data, c) => got.push(["option", data, c === conn]) });
    conn.on("message", (data) => got.push(["on", data]));
    sockets[0].serverOpen();
    sockets[0].serverSend({ type: "message", data: { user: "ann", text: "hi" } });
    assert.deepEqual(got, [["option", { user: "ann", text: "hi" }, true], ["on", { user: "ann", text: "hi" }]]);
    assert.deepEqual(domEvents.at(-1), ["hypergen:websocket:message", { url: "ws://h/ws/a/", data: { user: "ann", text: "hi" } }]);
  });

  test("an error frame without a pending call is an error event (and a console.error when nobody listens)", () => {
    const { ws, sockets, domEvents, logs } = setup({ href: "http://h/" });
    const conn = ws.open("/ws/a/");
    sockets[0].serverOpen();
    sockets[0].serverSend({ type: "error", code: "bad_request", message: "no" });
    assert.equal(logs.error.length, 1);
    assert.match(logs.error[0][0], /bad_request: no/);
    assert.deepEqual(domEvents.at(-1), ["hypergen:websocket:error", { url: "ws://h/ws/a/", code: "bad_request", message: "no", id: null }]);
    const errors = [];
    ws.open("/ws/a/", { onError: (error, c) => errors.push([error.code, error.message, error.id, c === conn]) });
    sockets[0].serverSend({ type: "error", id: 99, code: "server_error", message: "boom" });
    assert.deepEqual(errors, [["server_error", "boom", 99, true]]);
    assert.equal(logs.error.length, 1);
  });

  test("commands frames run the commands, then emit 'commands'", () => {
    const { client, ws, sockets } = setup();
    const ran = [];
    client.commands.register("test.add", (a, b) => ran.push(a + b));
    const conn = ws.open("/ws/a/");
    conn.on("commands", (commands) => ran.push(["event", commands.length]));
    sockets[0].serverOpen();
    sockets[0].serverSend({ type: "commands", commands: [["test.add", 1, 2], ["test.add", 3, 4]] });
    assert.deepEqual(ran, [3, 7, ["event", 2]]);
  });

  test("seq and epoch are kept; resync is an event; unknown, non-object and non-JSON frames are warned about", () => {
    const { ws, sockets, logs } = setup();
    const conn = ws.open("/ws/a/");
    const resyncs = [];
    conn.on("resync", (frame) => resyncs.push(frame));
    sockets[0].serverOpen();
    assert.equal(conn.lastSeq, null);
    sockets[0].serverSend({ type: "message", data: 1, seq: 4, epoch: 2 });
    sockets[0].serverSend({ type: "message", data: 2, seq: 5 });
    assert.deepEqual([conn.lastSeq, conn.epoch], [5, 2]);
    sockets[0].serverSend({ type: "resync", epoch: 3 });
    assert.equal(resyncs.length, 1);
    assert.equal(conn.epoch, 3);
    sockets[0].serverSend({ type: "nonsense" });
    sockets[0].serverSend({ type: "constructor" });
    sockets[0].serverSend({ type: "__proto__" });
    sockets[0].serverSend({ data: 1 });
    sockets[0].serverSend("not json {");
    sockets[0].serverSend("[1, 2]");
    sockets[0].onmessage({ data: new ArrayBuffer(2) });
    assert.equal(logs.warn.length, 7);
    assert.match(logs.warn[0][0], /unknown type "nonsense"/);
    assert.match(logs.warn[4][0], /not JSON/);
    assert.equal(conn.state, "open");
  });

  test("on() validates, returns an unsubscribe function, and a failing listener does not stop the others", () => {
    const { ws, sockets, logs } = setup();
    const conn = ws.open("/ws/a/");
    assert.throws(() => conn.on("mesage", () => {}), /unknown connection event "mesage"/);
    assert.throws(() => conn.on("message", "nope"), TypeError);
    const got = [];
    conn.on("message", () => {
      throw new Error("listener bug");
    });
    const off = conn.on("message", (data) => got.push(data));
    sockets[0].serverOpen();
    sockets[0].serverSend({ type: "message", data: 1 });
    off();
    sockets[0].serverSend({ type: "message", data: 2 });
    assert.deepEqual(got, [1]);
    assert.equal(logs.error.length, 2);
    assert.match(logs.error[0][0], /"message" listener/);
  });

  test("unknown options are warned about, bad handler options throw", () => {
    const { ws, logs } = setup();
    ws.open("/ws/a/", { callTimout: 5, queueLimit: -1 });
    assert.equal(logs.warn.length, 2);
    assert.equal(ws.connection("/ws/a/").options.queueLimit, 100);
    assert.throws(() => ws.open("/ws/b/", { onMessage: 3 }), /onMessage must be a function/);
  });

  test("without a WebSocket implementation the connection closes with an error", () => {
    const { ws, logs } = setup({ env: { WebSocket: null } });
    const conn = ws.open("/ws/a/");
    assert.equal(conn.state, "closed");
    assert.equal(logs.error.length, 1);
  });
});

describe("calls", () => {
  test("send() writes {args, id} with increasing ids and resolves with the reply frame", async () => {
    const { ws, sockets } = setup();
    const conn = ws.open("/ws/a/");
    sockets[0].serverOpen();
    const first = track(conn.send("hello", 1));
    const second = track(ws.send("/ws/a/", { x: [1] }));
    const third = track(ws.sendWithMeta("/ws/a/", { trace: "t1" }, "m"));
    const fourth = track(conn.sendWithMeta(null, "no meta"));
    assert.deepEqual(sockets[0].sent, [
      { args: ["hello", 1], id: 1 },
      { args: [{ x: [1] }], id: 2 },
      { args: ["m"], id: 3, meta: { trace: "t1" } },
      { args: ["no meta"], id: 4 },
    ]);
    sockets[0].serverSend({ type: "reply", id: 2 });
    sockets[0].serverSend({ type: "reply", id: 1 });
    await flush();
    assert.deepEqual(first.value, { type: "reply", id: 1 });
    assert.deepEqual(second.value, { type: "reply", id: 2 });
    assert.equal(third.settled, false);
    assert.equal(fourth.settled, false);
  });

  test("an error frame with the call's id rejects it with .code and .message", async () => {
    const { ws, sockets, logs } = setup();
    const conn = ws.open("/ws/a/");
    sockets[0].serverOpen();
    const call = track(conn.send());
    sockets[0].serverSend({ type: "error", id: 1, code: "permission_denied", message: "You may not." });
    await flush();
    assert.ok(call.error instanceof Error);
    assert.equal(call.error.code, "permission_denied");
    assert.equal(call.error.message, "You may not.");
    assert.equal(call.error.id, 1);
    assert.equal(logs.error.length, 0);
  });

  test("a call without a reply rejects with code 'timeout' after callTimeout (default 10 s); a late reply is ignored", async () => {
    const { ws, sockets, timers } = setup();
    const conn = ws.open("/ws/a/");
    sockets[0].serverOpen();
    const call = track(conn.send());
    timers.advance(9999);
    await flush();
    assert.equal(call.settled, false);
    timers.advance(1);
    await flush();
    assert.equal(call.error.code, "timeout");
    sockets[0].serverSend({ type: "reply", id: 1 });
    const quick = ws.open("/ws/b/", { callTimeout: 50 });
    sockets[1].serverOpen();
    const other = track(quick.send());
    timers.advance(50);
    await flush();
    assert.equal(other.error.code, "timeout");
  });

  test("callTimeout 0 disables the timeout; replies clear their timer", async () => {
    const { ws, sockets, timers } = setup();
    const conn = ws.open("/ws/a/", { callTimeout: 0, pingInterval: 0 }); // no silence timer either
    sockets[0].serverOpen();
    const call = track(conn.send());
    assert.equal(timers.timers.size, 0);
    timers.advance(60000);
    await flush();
    assert.equal(call.settled, false);
    const other = ws.open("/ws/b/", { pingInterval: 0 });
    sockets[1].serverOpen();
    track(other.send());
    assert.equal(timers.timers.size, 1);
    sockets[1].serverSend({ type: "reply", id: 1 });
    assert.equal(timers.timers.size, 0);
  });

  test("arguments that are not JSON reject with code 'encode_error' and nothing is sent", async () => {
    const { ws, sockets } = setup();
    const conn = ws.open("/ws/a/");
    sockets[0].serverOpen();
    const call = track(conn.send(10n));
    await flush();
    assert.equal(call.error.code, "encode_error");
    assert.deepEqual(sockets[0].sent, []);
  });

  test("a call in flight when the socket drops rejects with 'disconnected' and is not resent", async () => {
    const { ws, sockets, timers } = setup();
    const conn = ws.open("/ws/a/", { pingInterval: 0 });
    sockets[0].serverOpen();
    const call = track(conn.send("charge card"));
    sockets[0].serverClose(1006);
    await flush();
    assert.equal(call.error.code, "disconnected");
    timers.advance(1000);
    sockets[1].serverOpen();
    assert.deepEqual(sockets[1].sent, []);
    assert.equal(timers.timers.size, 0);
  });
});

describe("send queue", () => {
  test("calls made while connecting are sent in order on open", async () => {
    const { ws, sockets } = setup();
    const conn = ws.open("/ws/a/");
    const calls = [1, 2, 3].map((n) => track(conn.send(n)));
    assert.deepEqual(sockets[0].sent, []);
    let sentWhenOpenFired = null;
    conn.on("state", (d) => d.state === "open" && track(conn.send("from a state listener")));
    conn.on("open", () => (sentWhenOpenFired = sockets[0].sent.length));
    sockets[0].serverOpen();
    assert.equal(sentWhenOpenFired, 4);
    track(conn.send(5));
    assert.deepEqual(sockets[0].sent.map((f) => f.args[0]), [1, 2, 3, "from a state listener", 5]);
    assert.deepEqual(sockets[0].sent.map((f) => f.id), [1, 2, 3, 4, 5]);
    for (const id of [1, 2, 3]) sockets[0].serverSend({ type: "reply", id });
    await flush();
    assert.ok(calls.every((c) => c.value && c.value.type === "reply"));
  });

  test("the queue is bounded: queueLimit (default 100), then 'queue_full' and the queued calls still go out", async () => {
    const { ws, sockets } = setup();
    const small = ws.open("/ws/a/", { queueLimit: 2 });
    const calls = ["a", "b", "c"].map((x) => track(small.send(x)));
    await flush();
    assert.equal(calls[2].error.code, "queue_full");
    assert.equal(calls[0].settled || calls[1].settled, false);
    sockets[0].serverOpen();
    assert.deepEqual(sockets[0].sent.map((f) => f.args[0]), ["a", "b"]);

    const big = ws.open("/ws/b/");
    const many = Array.from({ length: 101 }, (_, i) => track(big.send(i)));
    await flush();
    assert.equal(many.filter((c) => c.settled).length, 1);
    assert.equal(many[100].error.code, "queue_full");
  });

  test("calls made while reconnecting are queued and flushed after the reconnect", () => {
    const { ws, sockets, timers } = setup();
    const conn = ws.open("/ws/a/");
    sockets[0].serverOpen();
    sockets[0].serverClose(1012);
    track(conn.send("x"));
    track(conn.send("y"));
    timers.advance(1000);
    assert.deepEqual(sockets[1].sent, []);
    sockets[1].serverOpen();
    assert.deepEqual(sockets[1].sent.map((f) => f.args[0]), ["x", "y"]);
  });

  test("a queued call survives failed reconnect attempts, and times out from the moment it was made", async () => {
    const { ws, sockets, timers } = setup();
    const conn = ws.open("/ws/a/", { callTimeout: 3000 });
    const early = track(conn.send("early"));
    sockets[0].serverClose(1006);
    timers.advance(1000);
    const late = track(conn.send("late"));
    sockets[1].serverClose(1006);
    timers.advance(1500);
    await flush();
    assert.equal(early.settled, false);
    timers.advance(500);
    await flush();
    assert.equal(early.error.code, "timeout");
    sockets.at(-1).serverOpen();
    assert.deepEqual(sockets.at(-1).sent.map((f) => f.args[0]), ["late"]);
    assert.equal(late.settled, false);
  });

  test("an explicit close rejects queued calls with 'closed' and sent ones with 'disconnected'; later sends reject", async () => {
    const { ws, sockets } = setup();
    const conn = ws.open("/ws/a/");
    sockets[0].serverOpen();
    const sent = track(conn.send(1));
    sockets[0].serverClose(1006);
    const queued = track(conn.send(2));
    conn.close();
    const after = track(conn.send(3));
    await flush();
    assert.equal(sent.error.code, "disconnected");
    assert.equal(queued.error.code, "closed");
    assert.equal(after.error.code, "closed");
  });
});

describe("reconnect policy", () => {
  test("backoff(): base 500, factor 2, cap 30 s, equal jitter", () => {
    const { backoff, DEFAULTS } = hypergen.websocket;
    assert.deepEqual(DEFAULTS, { callTimeout: 10000, queueLimit: 100, backoffBase: 500, backoffFactor: 2, backoffMax: 30000, healthyAfter: 5000, pingInterval: 25000, pingTimeout: 10000 });
    const high = () => 1;
    assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7, 20].map((n) => backoff(n, {}, high)), [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    assert.deepEqual([0, 1, 6].map((n) => backoff(n, {}, () => 0)), [250, 500, 15000]);
    assert.equal(backoff(1, { backoffBase: 100, backoffFactor: 3, backoffMax: 250 }, high), 250);
    for (let i = 0; i < 200; i++) {
      const attempt = i % 10;
      const d = Math.min(30000, 500 * 2 ** attempt);
      const delay = backoff(attempt);
      assert.ok(delay >= d / 2 && delay <= d, `${delay} outside [${d / 2}, ${d}]`);
    }
  });

  test("the delays between attempts grow, are capped, and depend on random()", () => {
    let r = 0;
    const { ws, sockets, timers } = setup({ random: () => r });
    const conn = ws.open("/ws/a/");
    const delays = [];
    conn.on("close", (d) => delays.push(d.delay));
    for (let i = 0; i < 9; i++) {
      r = i % 2 ? 0.999999 : 0;
      const before = sockets.length;
      sockets.at(-1).serverClose(1006);
      timers.advance(delays.at(-1) - 1);
      assert.equal(sockets.length, before, "no reconnect before the delay");
      timers.advance(1);
      assert.equal(sockets.length, before + 1, "reconnect after the delay");
    }
    const caps = [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000];
    delays.forEach((delay, i) => assert.ok(delay >= caps[i] / 2 && delay <= caps[i], `attempt ${i}: ${delay}`));
    assert.deepEqual(delays.filter((_, i) => i % 2 === 0), [250, 1000, 4000, 15000, 15000]);
  });

  test("the backoff starts over after the socket stayed open for healthyAfter (5 s), not before", () => {
    const { ws, sockets, timers } = setup({ random: () => 1 });
    const conn = ws.open("/ws/a/");
    const delays = [];
    conn.on("close", (d) => delays.push(d.delay));
    const dropAndReconnect = (openFor) => {
      sockets.at(-1).serverOpen();
      timers.advance(openFor);
      sockets.at(-1).serverClose(1006);
      timers.advance(delays.at(-1));
    };
    dropAndReconnect(100);
    dropAndReconnect(4999);
    dropAndReconnect(100);
    dropAndReconnect(5000);
    dropAndReconnect(0);
    assert.deepEqual(delays, [500, 1000, 2000, 500, 1000]);
    const custom = ws.open("/ws/b/", { healthyAfter: 50 });
    const customDelays = [];
    custom.on("close", (d) => customDelays.push(d.delay));
    for (const openFor of [10, 60]) {
      sockets.at(-1).serverOpen();
      timers.advance(openFor);
      sockets.at(-1).serverClose(1006);
      timers.advance(customDelays.at(-1));
    }
    assert.deepEqual(customDelays, [500, 500]);
  });

  for (const code of [4401, 4403]) {
    test(`close code ${code}: no reconnect, state "closed" with the code`, async () => {
      const { ws, sockets, timers, domEvents } = setup();
      const conn = ws.open("/ws/a/");
      const states = [];
      conn.on("state", (d) => states.push(d));
      sockets[0].serverOpen();
      const call = track(conn.send());
      sockets[0].serverClose(code, "denied");
      timers.advance(10 * 60 * 1000);
      await flush();
      assert.equal(sockets.length, 1);
      assert.equal(conn.state, "closed");
      assert.deepEqual(states.at(-1), { url: conn.url, state: "closed", code, reason: "denied", beforeOpen: false });
      assert.equal(domEvents.at(-1)[1].code, code);
      assert.equal(call.error.code, "refused");
      assert.equal(ws.connection("/ws/a/"), undefined);
    });
  }

  const WHY = { 4401: "not logged in", 4403: "permission denied" };
  for (const code of [4401, 4403]) {
    test(`close code ${code}: calls say that the socket was refused, and why`, async () => {
      const { ws, sockets, logs } = setup();
      const conn = ws.open("/ws/a/");
      const queued = track(conn.send("before open"));
      sockets[0].serverOpen();
      const sent = track(conn.send("in flight"));
      sockets[0].serverClose(code, "");
      const later = track(conn.send("after"));
      await flush();
      const refused = `the server refused the websocket to wss://example.com/ws/a/: ${WHY[code]} (close ${code})`;
      assert.equal(queued.error.code, "refused");
      assert.equal(queued.error.message, `${refused}; call 1 did not run`);
      assert.equal(sent.error.code, "refused");
      assert.equal(sent.error.message, `${refused}; call 2 did not run`);
      assert.equal(sent.error.closeCode, code);
      assert.equal(later.error.code, "refused");
      assert.equal(later.error.message, `${refused}; calls cannot be sent`);
      for (const error of [queued.error, sent.error, later.error]) assert.doesNotMatch(error.message, /may or may not/);
      assert.deepEqual(logs.warn.map((args) => args.join(" ")), [
        `hypergen: ${refused}; it does not reconnect. The server's log says which consumer refused which user, and why.`,
      ]);
    });
  }

  for (const code of [1000, 1001, 1006, 1009, 1011, 1012, 1013, 4000, 4400, 4500]) {
    test(`close code ${code} reconnects`, () => {
      const { ws, sockets, timers } = setup();
      const conn = ws.open("/ws/a/");
      sockets[0].serverOpen();
      sockets[0].serverClose(code);
      assert.equal(conn.state, "reconnecting");
      timers.advance(500);
      assert.equal(sockets.length, 2);
    });
  }

  test("an explicit close stops reconnecting, also while waiting for the next attempt", () => {
    const { ws, sockets, timers } = setup();
    const conn = ws.open("/ws/a/");
    sockets[0].serverOpen();
    assert.equal(ws.close("/ws/a/"), true);
    assert.deepEqual(sockets[0].closedWith, { code: 1000, reason: "closed by client" });
    assert.equal(conn.state, "closed");
    sockets[0].serverClose(1000);
    timers.advance(60000);
    assert.equal(sockets.length, 1);

    const other = ws.open("/ws/b/");
    sockets[1].serverClose(1006);
    assert.equal(other.state, "reconnecting");
    other.close();
    timers.advance(60000);
    assert.equal(sockets.length, 2);
    assert.equal(other.state, "closed");
  });

  test("the server commands hypergen.websocket.open and hypergen.websocket.close", () => {
    const { client, ws, sockets, timers } = setup({ href: "https://example.com/" });
    const conn = ws.open("/ws/a/");
    sockets[0].serverOpen();
    sockets[0].serverSend({ type: "commands", commands: [["hypergen.websocket.open", "/ws/b/", { callTimeout: 5 }]] });
    assert.equal(sockets.length, 2);
    assert.equal(ws.connection("wss://example.com/ws/b/").options.callTimeout, 5);
    sockets[0].serverSend({ type: "commands", commands: [["hypergen.websocket.close", "/ws/a/"]] });
    assert.equal(conn.state, "closed");
    timers.advance(30000);
    assert.equal(sockets.length, 2);
    client.commands.execute([["hypergen.websocket.close", "/ws/b/"]]);
    assert.equal(ws.connections().length, 0);
  });
});

describe("loading the script", () => {
  const code = readFileSync(SCRIPT, "utf8");

  test("it defines globalThis.hypergen and module.exports", () => {
    assert.equal(typeof hypergen.websocket.open, "function");
    assert.equal(typeof hypergen.commands.register, "function");
    const context = { URL, console, module: { exports: {} } };
    vm.runInNewContext(code, context);
    assert.equal(context.module.exports, context.hypergen);
  });

  test("it extends an existing hypergen object, and loading it twice keeps the first client", () => {
    const context = { URL, console, hypergen: { other: 1 } };
    vm.runInNewContext(code, context);
    const first = context.hypergen;
    assert.equal(first.other, 1);
    const websocket = first.websocket;
    vm.runInNewContext(code, context);
    assert.equal(context.hypergen.websocket, websocket);
  });

  test("configure() injects the environment into the global client", () => {
    const context = { URL, console };
    vm.runInNewContext(code, context);
    const { FakeWebSocket, sockets } = fakeWebSocketClass();
    context.hypergen.websocket.configure({ WebSocket: FakeWebSocket, location: { href: "http://h/" } });
    context.hypergen.websocket.open("/ws/x/");
    assert.equal(sockets[0].url, "ws://h/ws/x/");
  });
});

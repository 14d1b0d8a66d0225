// Unit tests of the heartbeat, offline detection and the reconnect hint of hypergen-ws.js (docs/javascript.rst,
// "Connections that tell the truth"): fake WebSocket, timers, window, navigator and document.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import vm from "node:vm";
import { readFileSync } from "node:fs";
import { FakeTimers, fakeWebSocketClass } from "./fakes.mjs";

const SCRIPT = new URL("../../hypergen_ws/static/hypergen_ws/hypergen-ws.js", import.meta.url);
await import(SCRIPT.href);
const hypergen = globalThis.hypergen;

function setup({ onLine = true, random = () => 0.5 } = {}) {
  const timers = new FakeTimers();
  const { FakeWebSocket, sockets } = fakeWebSocketClass();
  const warnings = [];
  const window = new EventTarget();
  const navigator = { onLine };
  const document = new EventTarget();
  document.visibilityState = "visible";
  const states = [];
  const client = hypergen.createClient({
    WebSocket: FakeWebSocket, setTimeout: timers.setTimeout, clearTimeout: timers.clearTimeout, now: timers.now,
    random, location: { href: "https://example.com/" }, window, navigator, document,
    console: { log() {}, warn: (...a) => warnings.push(a.join(" ")), error() {} },
  });
  const open = (options) => {
    const conn = client.websocket.open("/ws/a/", options);
    conn.on("state", (detail) => states.push(detail.state));
    return conn;
  };
  const goOffline = () => {
    navigator.onLine = false;
    window.dispatchEvent(new Event("offline"));
  };
  const goOnline = () => {
    navigator.onLine = true;
    window.dispatchEvent(new Event("online"));
  };
  const show = (state) => {
    document.visibilityState = state;
    document.dispatchEvent(new Event("visibilitychange"));
  };
  return { client, open, timers, sockets, warnings, states, goOffline, goOnline, show, navigator };
}

function track(promise) {
  const result = { settled: false };
  promise.then((value) => Object.assign(result, { settled: true, value }), (error) => Object.assign(result, { settled: true, error }));
  return result;
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe("heartbeat", () => {
  test("a server ping is answered with a pong at once, and is no event of the page's", () => {
    const { open, sockets, warnings } = setup();
    const conn = open();
    const messages = [];
    conn.on("message", (data) => messages.push(data));
    sockets[0].serverOpen().serverSend({ type: "ping" });
    assert.deepEqual(sockets[0].sent, [{ type: "pong" }]);
    sockets[0].serverSend({ type: "pong" });
    assert.deepEqual(messages, []);
    assert.deepEqual(warnings, [], "ping and pong are known frame types");
  });

  test("a socket silent for pingInterval + pingTimeout is given up and a new one opened", () => {
    const { open, sockets, timers, warnings, states } = setup();
    const conn = open();
    sockets[0].serverOpen();
    timers.advance(20000);
    sockets[0].serverSend({ type: "message", data: 1 }); // any frame puts the deadline off
    timers.advance(34000);
    assert.equal(sockets.length, 1, "34 s after the last frame: still within 25 s + 10 s");
    timers.advance(1000);
    assert.deepEqual(sockets[0].closedWith.code, 4000);
    assert.equal(conn.state, "reconnecting");
    assert.ok(warnings.some((w) => w.includes("no frame for 35000 ms")), warnings);
    timers.advance(500);
    assert.equal(sockets.length, 2, "the first reconnect comes after the usual backoff");
    assert.deepEqual(states, ["open", "reconnecting"]);
  });

  test("a socket that does not even open within pingInterval + pingTimeout is given up and tried again", () => {
    const { open, sockets, timers } = setup();
    const conn = open();
    timers.advance(34999);
    assert.equal(sockets[0].closedWith, null, "a slow handshake is not given up early");
    timers.advance(1);
    assert.equal(sockets[0].closedWith.code, 4000);
    assert.equal(conn.state, "reconnecting");
    timers.advance(500);
    assert.equal(sockets.length, 2);
    sockets[1].serverOpen();
    assert.equal(conn.state, "open");
  });

  test("the server's own settings come from the options: pingInterval 0 watches no silence", () => {
    const { open, sockets, timers } = setup();
    open({ pingInterval: 0 });
    sockets[0].serverOpen();
    timers.advance(10 * 60 * 1000);
    assert.equal(sockets[0].closedWith, null);
  });

  test("a call in flight on a silent socket rejects with 'disconnected' when the socket is given up", async () => {
    const { open, sockets, timers } = setup();
    const conn = open({ pingInterval: 1000, pingTimeout: 500, callTimeout: 60000 });
    sockets[0].serverOpen();
    const call = track(conn.send("x"));
    timers.advance(1500);
    await flush();
    assert.equal(call.error.code, "disconnected");
  });
});

describe("reconnect hint", () => {
  test("a reconnect frame sets the delay of the reconnect after the 1012 close, and the position is kept", () => {
    const { open, sockets, timers } = setup();
    const conn = open();
    const closes = [];
    conn.on("close", (detail) => closes.push(detail));
    sockets[0].serverOpen().serverSend({ type: "sync", seq: 7, epoch: 3, replayed: 0 });
    sockets[0].serverSend({ type: "reconnect", delay: 4.2 }).serverClose(1012);
    assert.equal(closes[0].delay, 4200);
    timers.advance(4199);
    assert.equal(sockets.length, 1);
    timers.advance(1);
    assert.equal(sockets.length, 2);
    assert.match(sockets[1].url, /hgws_seq=7&hgws_epoch=3/, "it recovers what it missed");
    sockets[1].serverClose(1006); // the new process is not up yet: the usual backoff from attempt 0
    assert.ok(closes[1].delay >= 250 && closes[1].delay <= 500, closes[1].delay);
  });

  test("a 1012 close without a hint reconnects after the usual backoff", () => {
    const { open, sockets } = setup();
    const conn = open();
    const closes = [];
    conn.on("close", (detail) => closes.push(detail));
    sockets[0].serverOpen().serverClose(1012);
    assert.ok(closes[0].delay >= 250 && closes[0].delay <= 500);
  });
});

describe("offline", () => {
  test("offline: state 'offline', no reconnects, calls fail at once; online: connects at once", async () => {
    const { open, sockets, timers, goOffline, goOnline, states } = setup();
    const conn = open();
    sockets[0].serverOpen().serverClose(1006);
    assert.equal(conn.state, "reconnecting");
    const queued = track(conn.send("queued"));
    goOffline();
    assert.equal(conn.state, "offline");
    await flush();
    assert.equal(queued.error.code, "offline");
    const call = track(conn.send("now"));
    await flush();
    assert.equal(call.error.code, "offline");
    assert.match(call.error.message, /offline/);
    timers.advance(10 * 60 * 1000);
    assert.equal(sockets.length, 1, "no retries while offline");
    goOnline();
    assert.equal(sockets.length, 2, "online: a new socket at once, without waiting out the backoff");
    sockets[1].serverOpen();
    assert.equal(conn.state, "open");
    assert.deepEqual(states.filter((s, i) => s !== states[i - 1]), ["open", "reconnecting", "offline", "reconnecting", "open"]);
  });

  test("offline with an open socket: a probe; an answer brings it back to 'open', none gives it up", () => {
    const { open, sockets, timers, goOffline } = setup();
    const conn = open();
    sockets[0].serverOpen();
    goOffline();
    assert.equal(conn.state, "offline");
    assert.deepEqual(sockets[0].sent, [{ type: "ping" }]);
    sockets[0].serverSend({ type: "pong" });
    assert.equal(conn.state, "open", "the network was there after all");
    goOffline();
    timers.advance(10000);
    assert.equal(sockets[0].closedWith.code, 4000);
    assert.equal(conn.state, "offline");
    timers.advance(60000);
    assert.equal(sockets.length, 1);
  });

  test("a connection opened in an offline page waits for 'online'", () => {
    const { open, sockets, goOnline } = setup({ onLine: false });
    const conn = open();
    assert.equal(conn.state, "offline");
    assert.equal(sockets.length, 0);
    goOnline();
    assert.equal(sockets.length, 1);
  });
});

describe("visibility", () => {
  test("a page that becomes visible probes its open socket, and reconnects at once when it is dead", () => {
    const { open, sockets, timers, show } = setup();
    open();
    sockets[0].serverOpen();
    show("hidden");
    assert.deepEqual(sockets[0].sent, []);
    show("visible");
    assert.deepEqual(sockets[0].sent, [{ type: "ping" }]);
    timers.advance(9999);
    assert.equal(sockets[0].closedWith, null);
    timers.advance(1);
    assert.equal(sockets[0].closedWith.code, 4000, "no answer within pingTimeout: dead");
    assert.equal(sockets.length, 2, "and a new socket at once");
  });

  test("a page that becomes visible while reconnecting connects now instead of after the backoff", () => {
    const { open, sockets, timers, show } = setup({ random: () => 1 });
    const conn = open();
    for (let n = 0; n < 5; n++) {
      sockets.at(-1).serverClose(1006); // the backoff grows: 0.5, 1, 2, 4, 8 s
      timers.advance(timers.pending()[0]);
    }
    sockets.at(-1).serverClose(1006); // now 16 s to wait
    assert.deepEqual(timers.pending(), [16000]);
    show("visible");
    assert.equal(sockets.length, 7, "at once");
    sockets[6].serverOpen();
    assert.equal(conn.state, "open");
  });
});

describe("script tag defaults", () => {
  test("data-ping-interval and data-ping-timeout of the loading script tag set the defaults", () => {
    const source = readFileSync(SCRIPT, "utf8");
    const optionsWith = (dataset) => {
      const context = { URL, Symbol, Map, Set, Promise, Object, Array, JSON, Math, Date, Error, TypeError, Number };
      context.globalThis = context;
      context.document = { currentScript: { dataset } };
      vm.runInNewContext(source, context);
      return new context.hypergen.websocket.Connection({ env: () => ({ console }) }, "wss://x/", {}).options;
    };
    assert.deepEqual([optionsWith({ pingInterval: "60", pingTimeout: "15" })].map((o) => [o.pingInterval, o.pingTimeout]),
      [[60000, 15000]]);
    assert.equal(optionsWith({ pingInterval: "off" }).pingInterval, 0);
    assert.equal(optionsWith({}).pingInterval, 25000);
  });
});

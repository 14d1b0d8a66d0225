// Unit tests of recovery in hypergen-ws.js (docs/delivery.rst): positions, replay, gaps, resync, expiry, presence.
// Run with `node --test tests/js/`. A fake WebSocket and fake timers are injected through createClient(env).
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { FakeTimers, fakeWebSocketClass } from "./fakes.mjs";

const SCRIPT = new URL("../../hypergen_ws/static/hypergen_ws/hypergen-ws.js", import.meta.url);
await import(SCRIPT.href);
const hypergen = globalThis.hypergen;

function setup() {
  const timers = new FakeTimers();
  const { FakeWebSocket, sockets } = fakeWebSocketClass();
  const warnings = [];
  const document = new EventTarget();
  const domEvents = [];
  for (const name of ["resync", "presence"]) {
    document.addEventListener(`hypergen:websocket:${name}`, (e) => domEvents.push([name, e.detail]));
  }
  const client = hypergen.createClient({
    WebSocket: FakeWebSocket,
    setTimeout: timers.setTimeout,
    clearTimeout: timers.clearTimeout,
    now: timers.now,
    random: () => 0.5,
    location: { href: "https://example.com/page/" },
    document,
    console: { log() {}, error() {}, warn: (...a) => warnings.push(a.join(" ")) },
  });
  const conn = client.websocket.open("/ws/chat/feed/lobby/?team=red");
  const messages = [];
  const resyncs = [];
  conn.on("message", (data) => messages.push(data));
  conn.on("resync", (detail) => resyncs.push(detail));
  return { client, conn, sockets, timers, messages, resyncs, domEvents, warnings, last: () => sockets.at(-1) };
}

const msg = (seq, data, epoch = 77) => ({ type: "message", data, seq, epoch });
const params = (url) => Object.fromEntries(new URL(url).searchParams);

describe("recovery position", () => {
  test("the first socket has the plain URL; a reconnect carries hgws_seq and hgws_epoch, other params kept", () => {
    const { conn, sockets, timers } = setup();
    assert.deepEqual(params(sockets[0].url), { team: "red" });
    sockets[0].serverOpen().serverSend({ type: "sync", seq: 0, epoch: 77, replayed: 0 }).serverSend(msg(1, "a")).serverSend(msg(2, "b"));
    assert.deepEqual([conn.lastSeq, conn.epoch], [2, 77]);
    sockets[0].serverClose(1006);
    timers.advance(30000);
    assert.equal(sockets.length, 2);
    assert.deepEqual(params(sockets[1].url), { team: "red", hgws_seq: "2", hgws_epoch: "77" });
    assert.equal(conn.url, "wss://example.com/ws/chat/feed/lobby/?team=red", "the connection's URL stays the same");
  });

  test("replayed frames after sync are handled in order; frames already handled are dropped", () => {
    const { sockets, timers, messages } = setup();
    sockets[0].serverOpen().serverSend({ type: "sync", seq: 0, epoch: 77, replayed: 0 }).serverSend(msg(1, "a"));
    sockets[0].serverClose();
    timers.advance(30000);
    sockets[1].serverOpen().serverSend({ type: "sync", seq: 1, epoch: 77, replayed: 2 });
    sockets[1].serverSend(msg(2, "b")).serverSend(msg(3, "c")).serverSend(msg(3, "c again")).serverSend(msg(2, "b again"));
    sockets[1].serverSend(msg(4, "d"));
    assert.deepEqual(messages, ["a", "b", "c", "d"]);
  });

  test("a redacted frame in a replay counts for the position, does nothing and warns of nothing", () => {
    const { conn, sockets, messages, warnings } = setup();
    sockets[0].serverOpen().serverSend({ type: "sync", seq: 0, epoch: 77, replayed: 3 }).serverSend(msg(1, "a"));
    sockets[0].serverSend({ type: "redacted", seq: 2, epoch: 77 }).serverSend(msg(3, "c"));
    assert.deepEqual(messages, ["a", "c"]);
    assert.deepEqual([conn.lastSeq, sockets.length], [3, 1], "no gap: nothing to recover");
    assert.deepEqual(warnings, []);
  });

  test("a page-rendered position in the URL is replaced by the newer one on reconnect", () => {
    const { client, sockets, timers } = setup();
    const conn = client.websocket.open("/ws/x/?hgws_seq=5&hgws_epoch=9");
    const socket = sockets.at(-1);
    assert.deepEqual(params(socket.url), { hgws_seq: "5", hgws_epoch: "9" });
    socket.serverOpen().serverSend({ type: "sync", seq: 5, epoch: 9, replayed: 0 }).serverSend(msg(6, "x", 9));
    socket.serverClose();
    timers.advance(30000);
    assert.deepEqual(params(sockets.at(-1).url), { hgws_seq: "6", hgws_epoch: "9" });
    assert.equal(conn.lastSeq, 6);
  });
});

describe("gaps while connected", () => {
  test("a skipped seq closes the socket and reconnects at once with the last seq; the frame is not handled", () => {
    const { conn, sockets, timers, messages, warnings } = setup();
    sockets[0].serverOpen().serverSend({ type: "sync", seq: 0, epoch: 77, replayed: 0 }).serverSend(msg(1, "a"));
    sockets[0].serverSend(msg(3, "c"));
    assert.deepEqual(messages, ["a"]);
    assert.deepEqual(sockets[0].closedWith, { code: 4000, reason: "recovering" });
    assert.equal(conn.state, "reconnecting");
    assert.match(warnings[0], /frame 2 missing/);
    sockets[0].serverSend(msg(4, "late frame of the old socket"));
    timers.advance(0);
    assert.equal(sockets.length, 2, "reconnects without a backoff delay");
    assert.deepEqual(params(sockets[1].url).hgws_seq, "1");
    sockets[1].serverOpen().serverSend({ type: "sync", seq: 1, epoch: 77, replayed: 2 }).serverSend(msg(2, "b")).serverSend(msg(3, "c"));
    assert.deepEqual(messages, ["a", "b", "c"]);
  });

  test("a call in flight when a gap is recovered rejects with 'disconnected'", async () => {
    const { conn, sockets } = setup();
    sockets[0].serverOpen().serverSend({ type: "sync", seq: 0, epoch: 77, replayed: 0 });
    const call = conn.send("x");
    sockets[0].serverSend(msg(2, "skip"));
    await assert.rejects(call, (error) => error.code === "disconnected");
  });

  test("without a sync frame (a consumer without history) seqs are kept but never checked", () => {
    const { conn, sockets, messages } = setup();
    sockets[0].serverOpen().serverSend(msg(1, "a")).serverSend(msg(5, "e")).serverSend(msg(5, "e"));
    assert.deepEqual(messages, ["a", "e", "e"]);
    assert.equal(conn.state, "open");
    assert.equal(conn.lastSeq, 5);
  });

  test("frames without a seq (history=False) are handled between sequenced ones", () => {
    const { sockets, messages } = setup();
    sockets[0].serverOpen().serverSend({ type: "sync", seq: 0, epoch: 77, replayed: 0 });
    sockets[0].serverSend(msg(1, "a")).serverSend({ type: "message", data: "typing" }).serverSend(msg(2, "b"));
    assert.deepEqual(messages, ["a", "typing", "b"]);
  });
});

describe("resync", () => {
  test("a resync frame is an event and a DOM event; its position is taken", () => {
    const { conn, sockets, resyncs, domEvents } = setup();
    sockets[0].serverOpen().serverSend({ type: "resync", reason: "too_far_behind", seq: 40, epoch: 77 });
    assert.equal(resyncs.length, 1);
    assert.equal(resyncs[0].reason, "too_far_behind");
    assert.deepEqual(domEvents, [["resync", { url: conn.url, reason: "too_far_behind", seq: 40, epoch: 77 }]]);
    assert.deepEqual([conn.lastSeq, conn.epoch], [40, 77]);
    sockets[0].serverSend(msg(41, "live"));
    assert.equal(conn.state, "open");
  });

  test("a live frame of a new epoch (Redis lost the history) is a resync, and the frame is handled", () => {
    const { conn, sockets, resyncs, messages } = setup();
    sockets[0].serverOpen().serverSend({ type: "sync", seq: 0, epoch: 77, replayed: 0 }).serverSend(msg(1, "a"));
    sockets[0].serverSend(msg(1, "fresh", 88));
    assert.deepEqual(resyncs.map((r) => [r.reason, r.seq, r.epoch]), [["epoch_changed", 1, 88]]);
    assert.deepEqual(messages, ["a", "fresh"]);
    assert.deepEqual([conn.lastSeq, conn.epoch], [1, 88]);
    assert.equal(conn.state, "open");
  });

  test("a late frame of an epoch left is dropped, not a second resync: the same (epoch, seq) is never handled twice", () => {
    const { conn, sockets, resyncs, messages } = setup();
    sockets[0].serverOpen().serverSend({ type: "sync", seq: 0, epoch: 77, replayed: 0 }).serverSend(msg(1, "a")).serverSend(msg(2, "b"));
    sockets[0].serverSend(msg(1, "fresh", 88)).serverSend(msg(2, "b", 77)).serverSend(msg(2, "fresh 2", 88));
    assert.deepEqual(resyncs.map((r) => [r.reason, r.seq, r.epoch]), [["epoch_changed", 1, 88]]);
    assert.deepEqual(messages, ["a", "b", "fresh", "fresh 2"]);
    assert.deepEqual([conn.lastSeq, conn.epoch], [2, 88]);
  });

  test("a history that went back: the range handled before is not handled again, then a 'rolled_back' resync", () => {
    // The server's Redis went back to an older copy (seq 1), then forward to the newer one: it replays 2-3 again.
    const { conn, sockets, timers, resyncs, messages } = setup();
    sockets[0].serverOpen().serverSend({ type: "sync", seq: 0, epoch: 77, replayed: 0 });
    sockets[0].serverSend(msg(1, "a")).serverSend(msg(2, "b")).serverSend(msg(3, "c"));
    sockets[0].serverClose(1006);
    timers.advance(30000);
    sockets[1].serverOpen().serverSend({ type: "resync", reason: "unknown_position", seq: 1, epoch: 77 });
    sockets[1].serverClose(1006);
    timers.advance(30000);
    assert.deepEqual(params(sockets[2].url).hgws_seq, "1");
    sockets[2].serverOpen().serverSend({ type: "sync", seq: 1, epoch: 77, replayed: 2 });
    sockets[2].serverSend(msg(2, "b")).serverSend(msg(3, "c"));
    assert.deepEqual(messages, ["a", "b", "c"], "2 and 3 were handled already");
    assert.deepEqual([conn.lastSeq, conn.epoch, conn.state, sockets.length], [3, 77, "open", 3], "no gap: no reconnect");
    sockets[2].serverSend(msg(4, "d"));
    assert.deepEqual(messages, ["a", "b", "c", "d"]);
    assert.deepEqual(resyncs.map((r) => [r.reason, r.seq, r.epoch]),
      [["unknown_position", 1, 77], ["rolled_back", 4, 77]], "what was dropped may have been new frames: said once");
  });

  test("a socket without history is told that frames may be missing: 'unavailable', then 'rejoined'", () => {
    // A consumer without history, connected while Redis was down (or connected when Redis restarted): its frames
    // carry no seq, and these resyncs are the only word that some may have been missed.
    const { conn, sockets, resyncs, domEvents, messages } = setup();
    sockets[0].serverOpen().serverSend({ type: "resync", reason: "unavailable", seq: null, epoch: null });
    sockets[0].serverSend({ type: "resync", reason: "rejoined", seq: null, epoch: null });
    sockets[0].serverSend({ type: "message", data: "after" });
    assert.deepEqual(resyncs.map((r) => r.reason), ["unavailable", "rejoined"]);
    assert.deepEqual(domEvents.map(([name, detail]) => [name, detail.reason, detail.seq]),
      [["resync", "unavailable", null], ["resync", "rejoined", null]]);
    assert.deepEqual(messages, ["after"]);
    assert.deepEqual([conn.lastSeq, conn.epoch, conn.state], [null, null, "open"]);
  });

  test("a resync without a position (history unavailable) takes the next frame as the start", () => {
    const { conn, sockets, resyncs, messages } = setup();
    sockets[0].serverOpen().serverSend({ type: "resync", reason: "unavailable", seq: null, epoch: null });
    sockets[0].serverSend(msg(12, "x")).serverSend(msg(13, "y"));
    assert.equal(resyncs.length, 1);
    assert.deepEqual(messages, ["x", "y"]);
    assert.equal(conn.lastSeq, 13);
  });
});

describe("expiry and presence", () => {
  test("close code 4408 reconnects (with the position) after the shortest backoff", () => {
    const { conn, sockets, timers } = setup();
    sockets[0].serverOpen().serverSend({ type: "sync", seq: 3, epoch: 77, replayed: 0 });
    sockets[0].serverClose(1006);
    timers.advance(30000);
    sockets[1].serverClose(1006);
    timers.advance(30000);
    sockets[2].serverOpen().serverClose(4408, "expired");
    assert.equal(conn.state, "reconnecting");
    assert.deepEqual(timers.pending(), [375], "backoff starts over: 500 ms with equal jitter at random() = 0.5");
    timers.advance(375);
    assert.deepEqual(params(sockets[3].url).hgws_seq, "3");
  });

  test("presence frames are 'presence' events and DOM events", () => {
    const { conn, sockets, domEvents } = setup();
    const seen = [];
    conn.on("presence", (frame) => seen.push(frame.event));
    sockets[0].serverOpen();
    sockets[0].serverSend({ type: "presence", event: "list", users: [] });
    sockets[0].serverSend({ type: "presence", event: "join", id: "u:1", user_id: 1, username: "ann" });
    sockets[0].serverSend({ type: "presence", event: "leave", id: "u:1", user_id: 1, username: "ann" });
    assert.deepEqual(seen, ["list", "join", "leave"]);
    assert.equal(domEvents.length, 3);
    assert.equal(domEvents[1][1].username, "ann");
    assert.equal(domEvents[1][1].url, conn.url);
  });
});

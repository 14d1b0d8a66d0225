// Test doubles shared by the node unit tests of hypergen-ws.js: fake timers and a WebSocket class driven by the test.

/** Timers driven by advance(ms); now() is the fake clock. */
export class FakeTimers {
  constructor() {
    this.time = 0;
    this.nextId = 1;
    this.timers = new Map();
    this.setTimeout = (fn, ms) => {
      const id = this.nextId++;
      this.timers.set(id, { fn, at: this.time + ms });
      return id;
    };
    this.clearTimeout = (id) => this.timers.delete(id);
    this.now = () => this.time;
  }

  /** Delays, from now, of the timers still pending. */
  pending() {
    return [...this.timers.values()].map((t) => t.at - this.time);
  }

  advance(ms) {
    const end = this.time + ms;
    for (;;) {
      const due = [...this.timers].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.time = due[1].at;
      due[1].fn();
    }
    this.time = end;
  }
}

/** A WebSocket class whose instances are driven from the test (the "server" side); the server methods chain. */
export function fakeWebSocketClass() {
  const sockets = [];
  class FakeWebSocket {
    constructor(url, protocols) {
      this.url = url;
      this.protocols = protocols;
      this.readyState = 0;
      this.sent = [];
      this.closedWith = null;
      sockets.push(this);
    }
    send(text) {
      if (this.readyState !== 1) throw new Error("InvalidStateError: not open");
      this.sent.push(JSON.parse(text));
    }
    close(code, reason) {
      this.closedWith = { code, reason };
      this.readyState = 2;
    }
    serverOpen() {
      this.readyState = 1;
      if (this.onopen) this.onopen({});
      return this;
    }
    serverSend(frame) {
      const data = typeof frame === "string" ? frame : JSON.stringify(frame);
      if (this.onmessage) this.onmessage({ data });
      return this;
    }
    serverClose(code = 1006, reason = "") {
      this.readyState = 3;
      if (this.onclose) this.onclose({ code, reason });
      return this;
    }
  }
  return { FakeWebSocket, sockets };
}

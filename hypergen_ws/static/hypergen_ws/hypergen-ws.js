/**
 * hypergen-ws.js: the browser client of hypergen_ws (wire protocol version 1).
 *
 * Opens auto-reconnecting websockets by URL, sends calls whose promises settle on the
 * server's reply, queues sends while (re)connecting, and executes the commands the
 * server sends through a registry: commands are never looked up on `window`.
 *
 * One file, no build step, no dependency. Defines `globalThis.hypergen` (extending an
 * existing object) and `module.exports` under CommonJS. Reference: docs/javascript.rst.
 */
(function () {
  "use strict";

  const CONNECTING = 0;
  const OPEN = 1;
  /** Close codes after which the client never reconnects (not authenticated, permission denied). */
  const NO_RECONNECT_CODES = Object.freeze([4401, 4403]);
  /** Why the server refused a socket, by close code, in words. */
  const REFUSALS = Object.freeze({ 4401: "not logged in", 4403: "permission denied" });
  const EVENTS = Object.freeze(["state", "message", "error", "commands", "open", "close", "resync", "presence"]);
  /** Close code of a connection whose lifetime is over (@consumer(expires=...)): reconnect at once. */
  const CLOSE_EXPIRED = 4408;
  /** Close code the client uses for a socket it gave up on: no frame came in time, or the page went offline. */
  const CLOSE_SILENT = 4000;
  /** The heartbeat frames (docs/protocol.rst): a ping is answered with a pong, both ways. */
  const PING = '{"type":"ping"}';
  const PONG = '{"type":"pong"}';
  /** Query parameters that carry the recovery position on a reconnect (docs/delivery.rst). */
  const SEQ_PARAM = "hgws_seq";
  const EPOCH_PARAM = "hgws_epoch";
  /** How many epochs a connection remembers the highest seq it handled in (docs/delivery.rst). */
  const EPOCHS_KEPT = 8;
  const HANDLER_OPTIONS = Object.freeze({ onMessage: "message", onState: "state", onError: "error" });
  /** Connection tokens (docs/clients.rst): offered as the subprotocol "hypergen-ws.bearer.<base64url token>". */
  const SUBPROTOCOL = "hypergen-ws";
  const BEARER_SUBPROTOCOL = "hypergen-ws.bearer.";
  const TOKEN_OPTIONS = Object.freeze(["getToken"]);
  const DEFAULTS = Object.freeze({
    callTimeout: 10000, // ms before a call without a reply rejects with code "timeout"; 0 disables
    queueLimit: 100, // calls kept while not open; one more rejects with code "queue_full"
    backoffBase: 500, // ms, first reconnect delay before jitter
    backoffFactor: 2, // growth per failed attempt
    backoffMax: 30000, // ms, cap of the delay before jitter
    healthyAfter: 5000, // ms a socket must stay open for the backoff to start over
    pingInterval: 25000, // ms, the server's PING_INTERVAL: it pings a socket quiet for that long; 0: it never does
    pingTimeout: 10000, // ms, the server's PING_TIMEOUT: how late a ping may be, and how long a probe waits
  });
  /** Defaults the page's script tag sets from the server's settings ({% hypergen_ws_script %}): data-ping-*. */
  const PAGE_DEFAULTS = scriptDefaults(globalThis.document);
  const MARKER = Symbol.for("hypergen_ws.client");

  const has = (object, key) => Object.prototype.hasOwnProperty.call(object, key);

  /** pingInterval/pingTimeout from the data-ping-interval/-timeout (seconds, or "off") of the loading script tag. */
  function scriptDefaults(doc) {
    const data = (doc && doc.currentScript && doc.currentScript.dataset) || {};
    const found = {};
    for (const [attribute, option] of [["pingInterval", "pingInterval"], ["pingTimeout", "pingTimeout"]]) {
      const value = data[attribute];
      if (value === "off") found[option] = 0;
      else if (value !== undefined && Number(value) >= 0) found[option] = Number(value) * 1000;
    }
    return Object.freeze(found);
  }
  const describe = (value) => (typeof value === "string" ? JSON.stringify(value) : value === null ? "null" : typeof value);

  /** Builds the Error used for every rejection and error event: it carries `.code`. */
  function wsError(code, message, extra) {
    return Object.assign(new Error(message), { name: "HypergenWebSocketError", code }, extra);
  }

  /** "the server refused the websocket to URL: not logged in (close 4401)". */
  function refusal(url, closeCode) {
    return `the server refused the websocket to ${url}: ${REFUSALS[closeCode]} (close ${closeCode})`;
  }

  /**
   * Delay in ms before reconnect attempt `attempt` (0 for the first), with "equal jitter":
   * d = min(backoffMax, backoffBase * backoffFactor ** attempt); delay = d / 2 + random() * d / 2.
   * @param {number} attempt
   * @param {object} [options] backoffBase, backoffFactor, backoffMax
   * @param {function(): number} [random] returns a number in [0, 1)
   * @returns {number}
   */
  function backoff(attempt, options, random) {
    const o = Object.assign({}, DEFAULTS, options);
    const capped = Math.min(o.backoffMax, o.backoffBase * Math.pow(o.backoffFactor, attempt));
    return capped / 2 + (random || Math.random)() * (capped / 2);
  }

  /**
   * Resolves `url` against the page location: ws: on http: pages, wss: on https: pages.
   * Absolute ws(s) URLs are kept; absolute http(s) URLs are mapped to ws(s).
   * @param {string} url
   * @param {{href: string}} [location]
   * @returns {string} the absolute websocket URL, without fragment
   */
  function resolveUrl(url, location) {
    if (typeof url !== "string" || url === "") {
      throw new TypeError(`hypergen: a websocket URL must be a non-empty string, got ${describe(url)}`);
    }
    const base = location && location.href;
    let parsed;
    try {
      parsed = base ? new URL(url, base) : new URL(url);
    } catch (_) {
      const hint = base ? "" : " (a relative URL needs a page location)";
      throw new TypeError(`hypergen: cannot resolve the websocket URL ${JSON.stringify(url)}${hint}`);
    }
    const schemes = { "http:": "ws:", "https:": "wss:", "ws:": "ws:", "wss:": "wss:" };
    if (!has(schemes, parsed.protocol)) throw new TypeError(`hypergen: ${JSON.stringify(url)} is not an http(s) or ws(s) URL`);
    parsed.protocol = schemes[parsed.protocol];
    parsed.hash = "";
    return parsed.href;
  }

  /** Merges injected globals with the real ones; functions are wrapped so `this` never matters. */
  function resolveEnv(env) {
    const pick = (name) => (env[name] !== undefined ? env[name] : globalThis[name]);
    const [setTimer, clearTimer, alertFn] = [pick("setTimeout"), pick("clearTimeout"), pick("alert")];
    const [random, now] = [env.random || Math.random, env.now || Date.now];
    return {
      hasTimers: typeof setTimer === "function",
      WebSocket: pick("WebSocket"),
      CustomEvent: pick("CustomEvent"),
      setTimeout: (fn, ms) => setTimer.call(undefined, fn, ms),
      clearTimeout: (id) => clearTimer.call(undefined, id),
      random: () => random.call(undefined),
      now: () => now.call(undefined),
      location: pick("location"),
      document: pick("document"),
      window: pick("window"),
      navigator: pick("navigator"),
      console: pick("console"),
      alert: typeof alertFn === "function" ? (message) => alertFn.call(undefined, message) : null,
    };
  }

  /** A token as unpadded base64url of its UTF-8 bytes: RFC 6455 token characters, whatever the token holds. */
  function unpaddedBase64(text) {
    let binary = "";
    for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  /** Calls getToken() and checks what it resolves to. @returns {Promise<string>} */
  function fetchToken(getToken) {
    return new Promise((resolve) => resolve(getToken())).then((token) => {
      if (typeof token !== "string" || !token) {
        throw new TypeError(`getToken() must resolve to a token (a non-empty string), got ${describe(token)}`);
      }
      return token;
    });
  }

  function pickOptions(options, con) {
    const picked = Object.assign({}, DEFAULTS, PAGE_DEFAULTS);
    for (const key of Object.keys(options)) {
      if (has(HANDLER_OPTIONS, key) || TOKEN_OPTIONS.includes(key)) continue;
      if (!has(DEFAULTS, key)) con.warn(`hypergen: unknown websocket option ${JSON.stringify(key)} ignored`);
      else if (typeof options[key] === "number" && options[key] >= 0) picked[key] = options[key];
      else con.warn(`hypergen: option ${key} must be a number >= 0, got ${describe(options[key])}`);
    }
    return picked;
  }

  /** Handlers of server frames, by "type". The null prototype keeps "constructor" & co. out. */
  const FRAME_HANDLERS = Object.assign(Object.create(null), {
    commands(conn, frame) {
      conn._ctx.commands.execute(frame.commands);
      conn._emit("commands", frame.commands);
    },
    message(conn, frame) {
      conn._emit("message", frame.data);
      conn._ctx.dispatch("hypergen:websocket:message", { url: conn.url, data: frame.data });
    },
    reply(conn, frame) {
      const call = conn._pending.get(frame.id);
      if (call) conn._settle(call, null, frame);
    },
    error(conn, frame) {
      const id = frame.id === undefined ? null : frame.id;
      const code = typeof frame.code === "string" ? frame.code : "server_error";
      const error = wsError(code, typeof frame.message === "string" ? frame.message : code, { id, url: conn.url });
      const call = id === null ? undefined : conn._pending.get(id);
      if (call) conn._settle(call, error);
      else conn._reportError(error);
    },
    sync() {}, // the position is taken in _track(); replayed frames follow
    redacted() {}, // a replayed frame history no longer keeps: its seq counts (in _track()), it does nothing
    resync(conn, frame) {
      conn._resync(frame);
    },
    presence(conn, frame) {
      conn._emit("presence", frame);
      conn._ctx.dispatch("hypergen:websocket:presence", Object.assign({ url: conn.url }, frame));
    },
    ping(conn) {
      conn._sendRaw(PONG);
    },
    pong() {}, // the answer to a probe: any frame counts, see _onFrame()
    reconnect(conn, frame) {
      // The server shuts down and closes with 1012 next: reconnect after its delay, not after the backoff.
      if (typeof frame.delay === "number" && frame.delay >= 0) conn._hint = Math.min(frame.delay, 3600) * 1000;
    },
    token(conn, frame) {
      if (frame.event === "expiring") conn._refreshToken(); // "refreshed": the new token was taken
    },
  });

  /**
   * One websocket per URL that reconnects until closed. Create it with hypergen.websocket.open().
   * Public: url, state, lastSeq, epoch, options, on(), send(), sendWithMeta(), probe(), close().
   */
  class Connection {
    constructor(ctx, url, options) {
      /** @type {string} the resolved ws(s) URL */
      this.url = url;
      /** @type {"connecting"|"open"|"reconnecting"|"offline"|"closed"} */
      this.state = "connecting";
      /** Last "seq" / "epoch" numbers seen on a server frame (null until one arrives). */
      this.lastSeq = null;
      this.epoch = null;
      this._handled = new Map(); // epoch -> the highest seq handled in it (the last EPOCHS_KEPT epochs)
      this._doubt = false; // frames were dropped as handled once while the position was behind that mark
      this.options = pickOptions(options, ctx.env().console);
      this._ctx = ctx;
      this._socket = null;
      this._nextId = 1;
      this._pending = new Map(); // id -> call, sent and waiting for its reply
      this._queue = []; // calls not sent yet, in order
      this._listeners = new Map(EVENTS.map((event) => [event, new Set()]));
      this._attempt = 0; // failed attempts since the last healthy connection
      this._timer = null; // the pending reconnect
      this._openedAt = null;
      this._refusedWith = null; // 4401 or 4403 once the server refused the socket
      this._heardAt = null; // when the open socket last received a frame
      this._silence = null; // the timer that checks for silence (pingInterval + pingTimeout)
      this._probe = null; // the timer of an unanswered probe ping
      this._hint = null; // ms the server said to wait before reconnecting (a "reconnect" frame)
      this._everOpened = false; // whether a socket of this connection ever opened
      this._toldHandshake = false; // the console was told once that the handshake may have been refused
      const getToken = options && options.getToken;
      if (getToken !== undefined && typeof getToken !== "function") {
        throw new TypeError(`hypergen: option getToken must be an async function returning a token, got ${describe(getToken)}`);
      }
      this._getToken = getToken || null;
      this._tokenRequest = null; // the getToken() call a connect waits for
      this._addHandlers(options);
    }

    /**
     * Subscribes to an event: "state", "message", "error", "commands", "open", "close", "resync", "presence".
     * @param {string} event
     * @param {function(*, Connection)} callback receives (detail, connection)
     * @returns {function(): void} unsubscribes
     */
    on(event, callback) {
      if (!this._listeners.has(event)) {
        throw new Error(`hypergen: unknown connection event ${describe(event)}; use one of ${EVENTS.join(", ")}`);
      }
      if (typeof callback !== "function") {
        throw new TypeError(`hypergen: the "${event}" listener must be a function, got ${describe(callback)}`);
      }
      const listeners = this._listeners.get(event);
      listeners.add(callback);
      return () => listeners.delete(callback);
    }

    /**
     * Calls the consumer: sends {"args": [...args], "id": N}.
     * @returns {Promise<object>} resolves with the reply frame; rejects with an Error carrying .code
     */
    send(...args) {
      return this._call(undefined, args);
    }

    /** Like send(), with {"meta": meta} in the frame. @returns {Promise<object>} */
    sendWithMeta(meta, ...args) {
      return this._call(meta, args);
    }

    /** Closes for good: no reconnect; queued calls reject with "closed", sent ones with "disconnected". */
    close() {
      if (this.state === "closed") return;
      const socket = this._detach();
      if (socket && (socket.readyState === CONNECTING || socket.readyState === OPEN)) socket.close(1000, "closed by client");
      this._finish(1000, "closed by client");
    }

    _addHandlers(options) {
      for (const name of Object.keys(HANDLER_OPTIONS)) {
        const handler = options && options[name];
        if (handler === undefined) continue;
        if (typeof handler !== "function") throw new TypeError(`hypergen: option ${name} must be a function`);
        if (name === "onState") this.on("state", (detail, conn) => handler(detail.state, conn, detail));
        else this.on(HANDLER_OPTIONS[name], handler);
      }
    }

    _connect() {
      if (!this._getToken) return this._open(undefined);
      const request = (this._tokenRequest = {});
      fetchToken(this._getToken).then(
        (token) => this._tokenRequest === request && this._open([SUBPROTOCOL, BEARER_SUBPROTOCOL + unpaddedBase64(token)]),
        (error) => {
          if (this._tokenRequest !== request) return;
          this._ctx.env().console.error(`hypergen: getToken() failed for ${this.url}; trying again:`, error);
          this._onClose(1006, "getToken() failed");
        },
      );
    }

    /** The server says the token expires soon: send a new one ({"type": "token", "token": ...}). */
    _refreshToken() {
      const socket = this._socket;
      if (!this._getToken) {
        return this._ctx.env().console.warn(`hypergen: the token of ${this.url} expires soon; pass getToken to refresh it`);
      }
      fetchToken(this._getToken).then(
        (token) => socket === this._socket && socket.readyState === OPEN && socket.send(JSON.stringify({ type: "token", token })),
        (error) => this._ctx.env().console.error(`hypergen: getToken() failed; ${this.url} closes when its token expires:`, error),
      );
    }

    _open(protocols) {
      this._tokenRequest = null;
      const env = this._ctx.env();
      let socket;
      try {
        if (typeof env.WebSocket !== "function") throw new Error("no WebSocket implementation in this environment");
        this._synced = false; // until this socket's "sync"/"resync" frame
        socket = protocols ? new env.WebSocket(this._socketUrl(), protocols) : new env.WebSocket(this._socketUrl());
      } catch (error) {
        env.console.error(`hypergen: cannot open a websocket to ${this.url}:`, error);
        return this._finish(1006, String((error && error.message) || error));
      }
      this._socket = socket;
      this._heardAt = env.now(); // a socket that does not even open is given up like a silent one
      this._watchSilence();
      socket.onopen = () => socket === this._socket && this._onOpen();
      socket.onmessage = (event) => socket === this._socket && this._onFrame(event.data);
      socket.onclose = (event) => socket === this._socket && this._onClose(event.code, event.reason);
    }

    /** Forgets the socket (its late events are ignored) and the pending reconnect; returns the socket. */
    _detach() {
      this._tokenRequest = null; // a getToken() still running opens nothing
      const socket = this._socket;
      if (socket) socket.onopen = socket.onmessage = socket.onclose = null;
      const env = this._ctx.env();
      for (const timer of [this._timer, this._silence, this._probe]) if (timer !== null) env.clearTimeout(timer);
      this._socket = this._timer = this._silence = this._probe = null;
      return socket;
    }

    /** Sends a frame that is not a call (a pong, a probe); false when the socket is not open. */
    _sendRaw(text) {
      const socket = this._socket;
      if (!socket || socket.readyState !== OPEN) return false;
      try {
        socket.send(text);
        return true;
      } catch (_) {
        return false;
      }
    }

    /** Checks, pingInterval + pingTimeout after the last frame, that another one came; else gives up the socket. */
    _watchSilence() {
      const limit = this.options.pingInterval > 0 ? this.options.pingInterval + this.options.pingTimeout : 0;
      const env = this._ctx.env();
      if (!limit || this._silence !== null || !env.hasTimers) return;
      const wait = Math.max(0, this._heardAt + limit - env.now());
      this._silence = env.setTimeout(() => {
        this._silence = null;
        if (env.now() - this._heardAt >= limit) this._giveUp(`no frame for ${limit} ms`);
        else this._watchSilence();
      }, wait);
    }

    /**
     * Asks the server whether the socket still works: a ping, which any frame within pingTimeout answers.
     * Without an answer the socket is given up (and a new one opened, unless the page is offline).
     */
    probe() {
      if (this._probe !== null || !this._sendRaw(PING)) return false;
      this._probe = this._ctx.env().setTimeout(() => { // any frame clears this timer (_onFrame): none came
        this._probe = null;
        this._giveUp(`no answer to a ping within ${this.options.pingTimeout} ms`);
      }, this.options.pingTimeout);
      return true;
    }

    /** The socket is known dead (silence, an unanswered probe): close it and go on as after a close. */
    _giveUp(why) {
      const socket = this._detach();
      if (socket && (socket.readyState === CONNECTING || socket.readyState === OPEN)) socket.close(CLOSE_SILENT, why);
      this._ctx.env().console.warn(`hypergen: the websocket to ${this.url} is silent (${why}); reconnecting`);
      this._onClose(CLOSE_SILENT, why, this.state !== "offline");
    }

    /** The page went offline: no reconnects, calls fail at once; an open socket is asked whether it still works. */
    _offline() {
      if (this.state === "closed" || this.state === "offline") return;
      const env = this._ctx.env();
      if (this._timer !== null) env.clearTimeout(this._timer);
      this._timer = null;
      this._setState("offline", null, "offline");
      this._failQueued("offline", "the page is offline");
      if (this._socket && this._socket.readyState === OPEN) this.probe();
    }

    /** The page is back online, or visible again: probe an open socket, or connect now instead of after the backoff. */
    _wake(why) {
      if (this.state === "closed") return;
      const nav = this._ctx.env().navigator;
      if (why !== "online" && this.state === "offline" && nav && nav.onLine === false) return;
      if (this._socket && this._socket.readyState === OPEN) {
        if (this.state === "offline") this._setState("open", null, null);
        this.probe();
        return;
      }
      if (this._socket && this._socket.readyState === CONNECTING) return;
      const env = this._ctx.env();
      if (this._timer !== null) env.clearTimeout(this._timer);
      this._timer = null;
      this._attempt = 0;
      this._setState("reconnecting", null, why);
      this._connect();
    }

    _onOpen() {
      this._openedAt = this._heardAt = this._ctx.env().now();
      this._everOpened = true;
      this._watchSilence();
      for (const call of this._queue.splice(0)) this._transmit(call); // before anyone can send
      this._setState("open", null, null);
      this._emit("open", { url: this.url });
    }

    _onClose(code, reason, immediate) {
      const env = this._ctx.env();
      const beforeOpen = this._openedAt === null; // closed before the handshake completed
      this._detach();
      if (this._openedAt !== null && env.now() - this._openedAt >= this.options.healthyAfter) this._attempt = 0;
      if (code === CLOSE_EXPIRED) this._attempt = 0;
      this._openedAt = this._heardAt = null;
      this._rejectPending(code);
      if (NO_RECONNECT_CODES.includes(code)) return this._finish(code, reason);
      if (this.state === "offline") {
        // No reconnect while offline: the "online" event (or the page becoming visible) connects again.
        this._emit("close", { url: this.url, code, reason, reconnect: false, delay: null, beforeOpen });
        return;
      }
      const hint = this._hint;
      this._hint = null;
      if (hint !== null) this._attempt = 0; // a server that restarts: its delay spreads the reconnects
      const delay = hint !== null ? hint : immediate ? 0 : backoff(this._attempt++, this.options, env.random);
      this._timer = env.setTimeout(() => {
        this._timer = null;
        this._connect();
      }, delay);
      if (beforeOpen && !this._everOpened && !this._toldHandshake) {
        this._toldHandshake = true;
        env.console.warn(`hypergen: the websocket to ${this.url} closed before it opened (code ${code}): the server ` +
          "refused the handshake (an Origin it does not trust, a Host not in ALLOWED_HOSTS, a path with no " +
          "consumer) or cannot be reached. The server's log says which; reconnecting meanwhile.");
      }
      this._emit("close", { url: this.url, code, reason, reconnect: true, delay, beforeOpen });
      this._setState("reconnecting", code, reason, beforeOpen);
    }

    /** Final close: reject what is outstanding, forget the connection, announce "closed". */
    _finish(code, reason) {
      this._detach();
      if (has(REFUSALS, code)) {
        this._refusedWith = code;
        this._ctx.env().console.warn(`hypergen: ${refusal(this.url, code)}; it does not reconnect. ` +
          "The server's log says which consumer refused which user, and why.");
      }
      this._rejectPending(code);
      this._failQueued("closed", `connection to ${this.url} closed (code ${code})`);
      this._ctx.forget(this);
      this._emit("close", { url: this.url, code, reason, reconnect: false, delay: null });
      this._setState("closed", code, reason);
    }

    /** Rejects every call that waits in the queue (never sent) with `code`. */
    _failQueued(code, why) {
      for (const call of this._queue.slice()) {
        this._settle(call, this._refused(call.id) || wsError(code, `${why}; call ${call.id} was not sent`, { id: call.id }));
      }
    }

    _rejectPending(code) {
      for (const call of Array.from(this._pending.values())) {
        if (has(REFUSALS, code)) {
          this._refusedWith = code;
          this._settle(call, this._refused(call.id));
          continue;
        }
        const message = `connection to ${this.url} lost (code ${code}) before the reply to call ${call.id}; ` +
          "it may or may not have run";
        this._settle(call, wsError("disconnected", message, { id: call.id }));
      }
    }

    /** The rejection of a call on a socket the server refused (null when it was not refused). */
    _refused(id) {
      const closeCode = this._refusedWith;
      if (closeCode === null) return null;
      const what = id === undefined ? "calls cannot be sent" : `call ${id} did not run`;
      return wsError("refused", `${refusal(this.url, closeCode)}; ${what}`, { id, closeCode, url: this.url });
    }

    _call(meta, args) {
      return new Promise((resolve, reject) => {
        if (this.state === "closed") {
          return reject(this._refused(undefined) || wsError("closed", `connection to ${this.url} is closed; open it again`));
        }
        if (this.state === "offline") {
          return reject(wsError("offline", `the page is offline, so the call to ${this.url} was not sent; ` +
            'try again on the "online" state (the connection reconnects by itself)'));
        }
        const id = this._nextId++;
        const frame = meta === undefined || meta === null ? { args, id } : { args, id, meta };
        let text;
        try {
          text = JSON.stringify(frame);
        } catch (error) {
          return reject(wsError("encode_error", `hypergen: the call arguments are not JSON: ${error.message}`, { id }));
        }
        const call = { id, text, resolve, reject, timer: null };
        if (this._socket && this.state === "open" && this._queue.length === 0) {
          this._transmit(call);
        } else if (this._queue.length >= this.options.queueLimit) {
          return reject(wsError("queue_full", `${this.options.queueLimit} calls already wait for ${this.url}`, { id }));
        } else {
          this._queue.push(call);
        }
        const timeout = this.options.callTimeout;
        if (timeout > 0 && (this._pending.has(id) || this._queue.includes(call))) {
          call.timer = this._ctx.env().setTimeout(() => {
            call.timer = null;
            this._settle(call, wsError("timeout", `no reply to call ${id} on ${this.url} within ${timeout} ms`, { id }));
          }, timeout);
        }
      });
    }

    _transmit(call) {
      this._pending.set(call.id, call);
      try {
        this._socket.send(call.text);
      } catch (error) {
        this._settle(call, wsError("disconnected", `sending call ${call.id} failed: ${error.message}`, { id: call.id }));
      }
    }

    /** Settles a call once: clears its timer, removes it from the pending map and the queue. */
    _settle(call, error, reply) {
      if (call.timer !== null) this._ctx.env().clearTimeout(call.timer);
      call.timer = null;
      this._pending.delete(call.id);
      const index = this._queue.indexOf(call);
      if (index !== -1) this._queue.splice(index, 1);
      if (error) call.reject(error);
      else call.resolve(reply);
    }

    _onFrame(data) {
      this._heardAt = this._ctx.env().now(); // any frame shows the socket works: silence and probes count from here
      if (this._probe !== null) {
        this._ctx.env().clearTimeout(this._probe);
        this._probe = null;
        if (this.state === "offline") this._setState("open", null, null);
      }
      const warn = (what, text) => this._ctx.env().console.warn(`hypergen: ignoring ${what} on ${this.url}`, text);
      if (typeof data !== "string") return warn("a binary frame", "");
      let frame;
      try {
        frame = JSON.parse(data);
      } catch (_) {
        return warn("a frame that is not JSON", data.slice(0, 200));
      }
      if (!frame || typeof frame !== "object" || Array.isArray(frame)) {
        return warn("a frame that is not an object", data.slice(0, 200));
      }
      if (!this._track(frame)) return;
      const handler = typeof frame.type === "string" ? FRAME_HANDLERS[frame.type] : undefined;
      if (!handler) return warn(`a frame of unknown type ${JSON.stringify(frame.type)}`, "");
      handler(this, frame);
    }

    /**
     * Recovery bookkeeping (docs/delivery.rst): keeps lastSeq/epoch; after this socket's "sync"/"resync"
     * frame, drops duplicates, turns a new epoch into a "resync" event, and reconnects with the last seq
     * when a seq is skipped (the server replays what is missing). A frame at or below the highest seq handled
     * in its epoch (the last EPOCHS_KEPT epochs) is never handled twice, whatever the server sends; frames
     * dropped so after a resync that moved the position back are followed by a "resync" (rolled_back) once
     * passed. Returns false for a frame not to handle.
     */
    _track(frame) {
      if (frame.type === "sync" || frame.type === "resync") {
        this._synced = true;
        this.lastSeq = typeof frame.seq === "number" ? frame.seq : null;
        this.epoch = typeof frame.epoch === "number" ? frame.epoch : null;
        this._doubt = this._doubt && frame.type === "sync";
        return true;
      }
      if (typeof frame.seq !== "number") return true;
      const top = this._synced && typeof frame.epoch === "number" ? this._handled.get(frame.epoch) : undefined;
      if (top !== undefined && frame.seq <= top) {
        if (frame.epoch === this.epoch && this.lastSeq !== null && frame.seq === this.lastSeq + 1) {
          this.lastSeq = frame.seq;
          this._doubt = true;
        }
        return false; // handled once already
      }
      if (this._synced && this.lastSeq !== null && this.epoch !== null && typeof frame.epoch === "number") {
        if (frame.epoch !== this.epoch) {
          this._handedOver(frame.seq, frame.epoch);
          this._resync({ type: "resync", reason: "epoch_changed", seq: frame.seq, epoch: frame.epoch });
          return true;
        }
        if (frame.seq <= this.lastSeq) return false; // already handled
        if (frame.seq > this.lastSeq + 1) {
          this._recover(frame.seq);
          return false;
        }
        if (this._doubt) {
          this._handedOver(frame.seq, frame.epoch);
          this._resync({ type: "resync", reason: "rolled_back", seq: frame.seq, epoch: frame.epoch });
          return true;
        }
      }
      if (this._synced && typeof frame.epoch === "number") this._handedOver(frame.seq, frame.epoch);
      else [this.lastSeq, this.epoch] = [frame.seq, typeof frame.epoch === "number" ? frame.epoch : this.epoch];
      return true;
    }

    /** Moves the position to a frame about to be handled, and remembers it as handled in its epoch. */
    _handedOver(seq, epoch) {
      [this.lastSeq, this.epoch, this._doubt] = [seq, epoch, false];
      const top = this._handled.get(epoch);
      this._handled.delete(epoch);
      this._handled.set(epoch, top === undefined ? seq : Math.max(top, seq));
      while (this._handled.size > EPOCHS_KEPT) this._handled.delete(this._handled.keys().next().value);
    }

    /** The server lost frames this page needs: tell the app, which reloads its state. */
    _resync(frame) {
      const detail = { url: this.url, reason: frame.reason, seq: frame.seq, epoch: frame.epoch };
      this._emit("resync", Object.assign({}, frame, { url: this.url }));
      this._ctx.dispatch("hypergen:websocket:resync", detail);
    }

    /** A seq was skipped: reconnect now with the last seq handled; the server replays the rest. */
    _recover(seq) {
      this._ctx.env().console.warn(`hypergen: frame ${this.lastSeq + 1} missing on ${this.url} (got ${seq}); recovering`);
      const socket = this._detach();
      if (socket && (socket.readyState === CONNECTING || socket.readyState === OPEN)) socket.close(4000, "recovering");
      this._onClose(4000, "recovering a missed frame", true);
    }

    /** The URL of the next socket: with the recovery position once there is one. */
    _socketUrl() {
      if (this.lastSeq === null || this.epoch === null) return this.url;
      const url = new URL(this.url);
      url.searchParams.set(SEQ_PARAM, String(this.lastSeq));
      url.searchParams.set(EPOCH_PARAM, String(this.epoch));
      return url.href;
    }

    _reportError(error) {
      const listened = this._listeners.get("error").size > 0;
      this._emit("error", error);
      this._ctx.dispatch("hypergen:websocket:error", { url: this.url, code: error.code, message: error.message, id: error.id });
      if (!listened) this._ctx.env().console.error(`hypergen: error from ${this.url}: ${error.code}: ${error.message}`);
    }

    _setState(state, code, reason, beforeOpen = false) {
      if (this.state === state) return;
      this.state = state;
      this._announceState(code, reason, beforeOpen);
    }

    /** "beforeOpen": the socket closed before its handshake completed (refused by the server, or unreachable). */
    _announceState(code, reason, beforeOpen = false) {
      const detail = { url: this.url, state: this.state, code, reason, beforeOpen };
      this._emit("state", detail);
      this._ctx.dispatch("hypergen:websocket:state", detail);
    }

    _emit(event, detail) {
      for (const callback of Array.from(this._listeners.get(event))) {
        try {
          callback(detail, this);
        } catch (error) {
          this._ctx.env().console.error(`hypergen: a "${event}" listener on ${this.url} failed:`, error);
        }
      }
    }
  }

  /** The command registry: names to functions; nothing is ever looked up anywhere else. */
  function createRegistry(getEnv) {
    const registry = new Map();
    return {
      /**
       * Registers (or replaces) command `name`; `fn` receives the command's arguments.
       * @param {string} name
       * @param {function(...*): *} fn
       */
      register(name, fn) {
        if (typeof name !== "string" || name === "") {
          throw new TypeError(`hypergen.commands.register(name, fn): name must be a non-empty string, ` +
            `got ${describe(name)}`);
        }
        if (typeof fn !== "function") {
          throw new TypeError(`hypergen.commands.register(${JSON.stringify(name)}, fn): fn must be a function, ` +
            `got ${describe(fn)}`);
        }
        registry.set(name, fn);
      },
      /** Removes command `name`. @returns {boolean} whether it was registered */
      unregister: (name) => registry.delete(name),
      /** @returns {boolean} whether command `name` is registered */
      has: (name) => registry.has(name),
      /** @returns {string[]} the registered command names */
      names: () => Array.from(registry.keys()),
      /**
       * Runs [name, ...args] commands in order; an unknown, malformed or failing one is logged and skipped.
       * @param {Array<Array>} commands
       */
      execute(commands) {
        const con = getEnv().console;
        if (!Array.isArray(commands)) {
          return con.error("hypergen: commands must be a list of [name, ...args], got", commands);
        }
        for (const command of commands) {
          if (!Array.isArray(command) || typeof command[0] !== "string") {
            con.error("hypergen: ignoring a malformed command (expected [name, ...args]):", command);
            continue;
          }
          const [name, ...args] = command;
          const fn = registry.get(name);
          const failed = (error) => con.error(`hypergen: command ${JSON.stringify(name)} failed:`, error);
          if (!fn) {
            con.error(`hypergen: unknown command ${JSON.stringify(name)}. Register it in the page with ` +
              `hypergen.commands.register(${JSON.stringify(name)}, function (...args) { ... }).`);
            continue;
          }
          try {
            const result = fn(...args);
            if (result && typeof result.then === "function") result.then(null, failed);
          } catch (error) {
            failed(error);
          }
        }
      },
    };
  }

  /* ---------- DOM morph: keeps unchanged nodes, and inputs (value, focus) that stay ---------- */

  function sameNode(a, b) {
    if (a.nodeType !== b.nodeType || a.nodeName !== b.nodeName) return false;
    return a.nodeType !== 1 || (a.id || "") === (b.id || "");
  }

  function childWithId(parent, id, start) {
    for (let node = parent.childNodes[start] || null; node; node = node.nextSibling) {
      if (node.nodeType === 1 && node.id === id) return node;
    }
    return null;
  }

  function syncAttributes(current, wanted) {
    for (const attr of Array.from(current.attributes)) {
      if (!wanted.hasAttribute(attr.name)) current.removeAttribute(attr.name);
    }
    for (const attr of Array.from(wanted.attributes)) {
      if (current.getAttribute(attr.name) !== attr.value) current.setAttribute(attr.name, attr.value);
    }
  }

  function morphNode(current, wanted) {
    if (current.nodeType !== 1) {
      if (current.nodeValue !== wanted.nodeValue) current.nodeValue = wanted.nodeValue;
      return;
    }
    syncAttributes(current, wanted);
    if (current.nodeName === "TEMPLATE") current.innerHTML = wanted.innerHTML;
    else morphChildren(current, wanted);
  }

  /** Makes the children of `from` match those of `to` (whose nodes it takes). */
  function morphChildren(from, to) {
    const wanted = Array.from(to.childNodes);
    wanted.forEach((node, index) => {
      let current = from.childNodes[index] || null;
      const keyed = node.nodeType === 1 && node.id ? childWithId(from, node.id, index) : null;
      if (keyed && keyed !== current) {
        from.insertBefore(keyed, current); // an element with the same id moves up instead of being recreated
        current = keyed;
      }
      if (current && sameNode(current, node)) morphNode(current, node);
      else from.insertBefore(node, current); // old nodes shift right; what is left over is removed below
    });
    while (from.childNodes.length > wanted.length) from.removeChild(from.lastChild);
  }

  function morphInto(element, html, env) {
    const doc = element.ownerDocument || env.document;
    const active = doc.activeElement;
    const range = active && typeof active.selectionStart === "number" ? [active.selectionStart, active.selectionEnd] : null;
    const template = doc.createElement("template");
    template.innerHTML = html;
    try {
      morphChildren(element, template.content);
    } catch (error) {
      env.console.error("hypergen: morph failed, replacing the content instead:", error);
      element.innerHTML = html;
    }
    if (active && active !== doc.activeElement && active.isConnected && element.contains(active)) {
      active.focus(); // moving an element blurs it
      if (range && typeof active.setSelectionRange === "function") active.setSelectionRange(range[0], range[1]);
    }
  }

  /* ---------- built-in commands ---------- */

  /** The schemes hypergen.redirect navigates to unless an app adds more to client.redirectSchemes. */
  const REDIRECT_SCHEMES = Object.freeze(["http:", "https:"]);

  /**
   * The absolute URL `url` stands for, when its scheme is one of `schemes` (relative URLs take the page's);
   * null otherwise (javascript:, data:, vbscript:, ... or a URL that does not parse). The browser's own URL
   * parser decides, so tabs, newlines and case cannot disguise a scheme.
   */
  function allowedRedirect(url, location, schemes) {
    let parsed;
    try {
      parsed = location && location.href ? new URL(String(url), location.href) : new URL(String(url));
    } catch (_) {
      return null;
    }
    return schemes.includes(parsed.protocol) ? parsed.href : null;
  }

  function createBuiltins(getEnv, redirectSchemes) {
    function withElement(command, id, fn) {
      const doc = getEnv().document;
      const element = doc ? doc.getElementById(String(id)) : null;
      if (element) fn(element);
      else getEnv().console.error(`hypergen: ${command}: no element with id ${JSON.stringify(id)} in the page`);
    }
    return {
      /** Inserts `html` at the end of element `id`. */
      append: (id, html) => withElement("hypergen.append", id, (el) => el.insertAdjacentHTML("beforeend", html)),
      /** Inserts `html` at the start of element `id`. */
      prepend: (id, html) => withElement("hypergen.prepend", id, (el) => el.insertAdjacentHTML("afterbegin", html)),
      /** Updates the children of element `id` to match `html`, keeping unchanged nodes and input state. */
      morph: (id, html) => withElement("hypergen.morph", id, (el) => morphInto(el, html, getEnv())),
      /** Replaces element `id` itself with `html` (outerHTML). */
      replace: (id, html) => withElement("hypergen.replace", id, (el) => (el.outerHTML = html)),
      /** Removes element `id`. */
      remove: (id) => withElement("hypergen.remove", id, (el) => el.remove()),
      /** Navigates to `url` when it is relative or its scheme is in client.redirectSchemes (http: and https:). */
      redirect(url) {
        const env = getEnv();
        const location = env.location;
        const target = allowedRedirect(url, location, redirectSchemes);
        if (target === null) {
          env.console.error(`hypergen: hypergen.redirect refused ${JSON.stringify(String(url).slice(0, 200))}: only ` +
            `relative URLs and ${redirectSchemes.join(", ")} URLs are followed (add a scheme to hypergen.redirectSchemes to allow it)`);
          return;
        }
        if (location && typeof location.assign === "function") location.assign(target);
        else if (location) location.href = target;
      },
      /** console.log(...args). */
      console: (...args) => getEnv().console.log(...args),
      /** window.alert(message); console.log where there is no alert(). */
      alert(message) {
        const env = getEnv();
        if (env.alert) env.alert(String(message));
        else env.console.log("hypergen alert:", message);
      },
    };
  }

  /**
   * Creates an independent client: its own connections, command registry and environment.
   * @param {object} [env] replaces globals: WebSocket, setTimeout, clearTimeout, random, now, location,
   *   document, console, CustomEvent, alert (each defaults to the global of that name; random to Math.random, now to Date.now)
   * @returns {object} {websocket, commands, createClient, redirectSchemes, append, prepend, morph, replace, remove, redirect, console, alert}
   */
  function createClient(env) {
    const rawEnv = Object.assign({}, env);
    let resolved = null;
    const getEnv = () => resolved || (resolved = resolveEnv(rawEnv));
    const connections = new Map();
    const commands = createRegistry(getEnv);
    const ctx = {
      env: getEnv,
      commands,
      forget(conn) {
        if (connections.get(conn.url) === conn) connections.delete(conn.url);
      },
      dispatch(name, detail) {
        const { document, CustomEvent } = getEnv();
        if (!document || typeof document.dispatchEvent !== "function" || typeof CustomEvent !== "function") return;
        document.dispatchEvent(new CustomEvent(name, { detail }));
      },
    };
    const find = (url) => connections.get(resolveUrl(url, getEnv().location));
    let watching = false;
    /** Listens, once, to the page's offline/online events and to its becoming visible again. */
    function watchNetwork() {
      if (watching) return;
      watching = true;
      const { window, document } = getEnv();
      const each = (method, why) => () => {
        for (const conn of Array.from(connections.values())) conn[method](why);
      };
      if (window && typeof window.addEventListener === "function") {
        window.addEventListener("offline", each("_offline", "offline"));
        window.addEventListener("online", each("_wake", "online"));
      }
      if (document && typeof document.addEventListener === "function") {
        const wake = each("_wake", "visible");
        document.addEventListener("visibilitychange", () => document.visibilityState === "visible" && wake());
      }
    }

    const websocket = {
      DEFAULTS,
      NO_RECONNECT_CODES,
      REFUSALS,
      backoff,
      Connection,
      /**
       * Opens an auto-reconnecting websocket, once per resolved URL.
       * @param {string} url relative to the page, or absolute
       * @param {object} [options] DEFAULTS keys, onMessage(data, conn), onState(state, conn, detail), onError(error, conn)
       * @returns {Connection} the existing one if the URL is already open (its handlers are added)
       */
      open(url, options) {
        const resolvedUrl = resolveUrl(url, getEnv().location);
        let conn = connections.get(resolvedUrl);
        if (conn) {
          conn._addHandlers(options);
          return conn;
        }
        conn = new Connection(ctx, resolvedUrl, options || {});
        connections.set(resolvedUrl, conn);
        watchNetwork();
        const nav = getEnv().navigator;
        if (nav && nav.onLine === false) {
          conn.state = "offline"; // opened in an offline page: it connects on the "online" event
          conn._announceState(null, "offline");
          return conn;
        }
        conn._announceState(null, null); // "connecting"
        conn._connect();
        return conn;
      },
      /** Closes the connection to `url` for good. @returns {boolean} whether there was one */
      close(url) {
        const conn = find(url);
        if (conn) conn.close();
        return Boolean(conn);
      },
      /** @returns {Connection|undefined} the connection to `url` unless it is closed */
      connection: (url) => find(url),
      /** @returns {Connection[]} every connection that is not closed */
      connections: () => Array.from(connections.values()),
      /** Calls the consumer at `url`, opening the connection if needed. @returns {Promise<object>} */
      send: (url, ...args) => websocket.sendWithMeta(url, undefined, ...args),
      /** Like send(), with {"meta": meta} in the frame. @returns {Promise<object>} */
      sendWithMeta(url, meta, ...args) {
        try {
          return websocket.open(url)._call(meta, args);
        } catch (error) {
          return Promise.reject(error);
        }
      },
      /** Replaces parts of the environment (see createClient); affects later operations. */
      configure(overrides) {
        Object.assign(rawEnv, overrides);
        resolved = null;
      },
      /** @returns {string} `url` resolved the way open() does */
      resolveUrl: (url) => resolveUrl(url, getEnv().location),
    };

    const redirectSchemes = REDIRECT_SCHEMES.slice();
    const builtins = createBuiltins(getEnv, redirectSchemes);
    for (const name of Object.keys(builtins)) commands.register(`hypergen.${name}`, builtins[name]);
    commands.register("alert", builtins.alert);
    commands.register("hypergen.websocket.open", (url, options) => void websocket.open(url, options));
    commands.register("hypergen.websocket.close", (url) => void websocket.close(url));
    return Object.assign({ [MARKER]: true, version: "1", websocket, commands, createClient, redirectSchemes }, builtins);
  }

  const existing = globalThis.hypergen;
  const hypergen = existing && typeof existing === "object" ? existing : {};
  if (!hypergen[MARKER]) Object.assign(hypergen, createClient());
  globalThis.hypergen = hypergen;
  if (typeof module === "object" && module && module.exports) module.exports = hypergen;
})();

/**
 * Types of hypergen-ws.js, the browser client of hypergen_ws (wire protocol version 1; docs/javascript.rst).
 *
 * The script defines `globalThis.hypergen` (and `module.exports` under CommonJS). Reference this file with
 * `/// <reference path=".../hypergen_ws/hypergen-ws.d.ts" />` or list it in tsconfig.json's "files".
 */

declare namespace hypergen {
  /** A command as the server sends it: its name, then its arguments. */
  type Command = [name: string, ...args: unknown[]];

  /** Where a connection is: it reconnects until closed (or refused with 4401/4403). */
  type ConnectionState = "connecting" | "open" | "reconnecting" | "offline" | "closed";

  type ConnectionEvent = "state" | "message" | "error" | "commands" | "open" | "close" | "resync" | "presence";

  /** The Error of every rejection and "error" event. */
  interface WebSocketError extends Error {
    name: "HypergenWebSocketError";
    /** "permission_denied", "bad_request", "server_error", "unavailable", "rate_limited" (error frames), or the
     * client's own: "timeout", "disconnected", "closed", "refused", "queue_full", "encode_error", "offline". */
    code: string;
    /** The id of the call it belongs to (null for an error frame without one). */
    id?: number | string | null;
    url?: string;
    /** 4401 or 4403 for a socket the server refused. */
    closeCode?: number;
  }

  interface ReplyFrame {
    type: "reply";
    id: number | string;
  }

  interface StateDetail {
    url: string;
    state: ConnectionState;
    code: number | null;
    reason: string | null;
    /** The socket closed before its handshake completed: refused by the server, or the server unreachable. */
    beforeOpen: boolean;
  }

  interface CloseDetail {
    url: string;
    code: number;
    reason: string;
    /** Whether the client reconnects, after `delay` ms. */
    reconnect: boolean;
    delay: number | null;
    /** Set when the client reconnects: the socket closed before its handshake completed. */
    beforeOpen?: boolean;
  }

  interface ResyncDetail {
    type: "resync";
    url: string;
    reason: string;
    seq: number | null;
    epoch: number | null;
  }

  interface PresenceUser {
    id: string;
    user_id: number | string | null;
    username: string | null;
    connections?: number;
    since?: string;
  }

  interface PresenceFrame {
    type: "presence";
    event: "list" | "join" | "leave";
    users?: PresenceUser[];
    id?: string;
    user_id?: number | string | null;
    username?: string | null;
  }

  /** The numeric options; each is a number >= 0 (see hypergen.websocket.DEFAULTS). */
  interface NumericOptions {
    /** ms before a call without a reply rejects with "timeout"; 0 disables (default 10000). */
    callTimeout: number;
    /** Calls kept while not open; one more rejects with "queue_full" (default 100). */
    queueLimit: number;
    /** ms, first reconnect delay before jitter (default 500). */
    backoffBase: number;
    /** Growth per failed attempt (default 2). */
    backoffFactor: number;
    /** ms, cap of the delay before jitter (default 30000). */
    backoffMax: number;
    /** ms a socket must stay open for the backoff to start over (default 5000). */
    healthyAfter: number;
    /** ms, the server's PING_INTERVAL (default 25000; 0: the server does not ping, no silence is watched). */
    pingInterval: number;
    /** ms, the server's PING_TIMEOUT (default 10000): silence of pingInterval + pingTimeout gives a socket up. */
    pingTimeout: number;
  }

  interface OpenOptions extends Partial<NumericOptions> {
    onMessage?: (data: unknown, conn: Connection) => void;
    onState?: (state: ConnectionState, conn: Connection, detail: StateDetail) => void;
    onError?: (error: WebSocketError, conn: Connection) => void;
    /** A connection token for every connect and every refresh (docs/clients.rst): offered as the subprotocol
     * "hypergen-ws.bearer.<base64url>", for pages whose sockets go to another domain. */
    getToken?: () => Promise<string> | string;
  }

  interface EventDetails {
    state: StateDetail;
    message: unknown;
    error: WebSocketError;
    commands: Command[];
    open: { url: string };
    close: CloseDetail;
    resync: ResyncDetail;
    presence: PresenceFrame;
  }

  /** One websocket per URL that reconnects until closed; made by hypergen.websocket.open(). */
  interface Connection {
    /** The resolved ws(s) URL. */
    readonly url: string;
    readonly state: ConnectionState;
    /** Last "seq" / "epoch" seen on a server frame (null until one arrives). */
    readonly lastSeq: number | null;
    readonly epoch: number | null;
    readonly options: NumericOptions;
    /** Subscribes to an event; returns the function that unsubscribes. */
    on<E extends ConnectionEvent>(event: E, callback: (detail: EventDetails[E], conn: Connection) => void): () => void;
    /** Calls the consumer with `args`; resolves with the reply frame, rejects with a WebSocketError. */
    send(...args: unknown[]): Promise<ReplyFrame>;
    /** Like send(), with {"meta": meta} in the frame. */
    sendWithMeta(meta: Record<string, unknown> | null | undefined, ...args: unknown[]): Promise<ReplyFrame>;
    /** Closes for good: no reconnect. */
    close(): void;
    /** Sends {"type": "ping"}; without a frame within pingTimeout the socket is given up. False without an open
     * socket, or while a probe waits. */
    probe(): boolean;
  }

  interface WebSocketApi {
    readonly DEFAULTS: Readonly<NumericOptions>;
    readonly NO_RECONNECT_CODES: readonly number[];
    readonly REFUSALS: Readonly<Record<number, string>>;
    /** Delay in ms before reconnect attempt `attempt` (0 first), with "equal jitter". */
    backoff(attempt: number, options?: Partial<NumericOptions>, random?: () => number): number;
    /** Opens an auto-reconnecting websocket, once per resolved URL (the existing one gets the handlers). */
    open(url: string, options?: OpenOptions): Connection;
    /** Closes the connection to `url` for good; whether there was one. */
    close(url: string): boolean;
    connection(url: string): Connection | undefined;
    connections(): Connection[];
    /** Calls the consumer at `url`, opening the connection if needed. */
    send(url: string, ...args: unknown[]): Promise<ReplyFrame>;
    sendWithMeta(url: string, meta: Record<string, unknown> | null | undefined, ...args: unknown[]): Promise<ReplyFrame>;
    /** Replaces parts of the environment (see createClient). */
    configure(overrides: Partial<Environment>): void;
    /** `url` resolved the way open() does. */
    resolveUrl(url: string): string;
  }

  /** The command registry: names to functions; nothing is ever looked up on `window`. */
  interface Commands {
    register(name: string, fn: (...args: any[]) => unknown): void;
    unregister(name: string): boolean;
    has(name: string): boolean;
    names(): string[];
    /** Runs commands in order; an unknown, malformed or failing one is logged and skipped. */
    execute(commands: Command[]): void;
  }

  /** What createClient() may replace; each defaults to the global of that name. */
  interface Environment {
    WebSocket: new (url: string, protocols?: string | string[]) => WebSocket;
    setTimeout: (fn: () => void, ms: number) => unknown;
    clearTimeout: (id: any) => void;
    random: () => number;
    now: () => number;
    location: { href: string; assign?: (url: string) => void } | null;
    document: Document | EventTarget | null;
    /** Where the "online" and "offline" events come from. */
    window: Pick<EventTarget, "addEventListener"> | null;
    navigator: { onLine?: boolean } | null;
    console: Pick<Console, "log" | "warn" | "error">;
    CustomEvent: typeof CustomEvent;
    alert: (message: string) => void;
  }

  interface Client {
    readonly version: "1";
    readonly websocket: WebSocketApi;
    readonly commands: Commands;
    /** Schemes hypergen.redirect follows (http: and https:; push more to allow them). */
    readonly redirectSchemes: string[];
    /** An independent client: its own connections, command registry and environment. */
    createClient(env?: Partial<Environment>): Client;
    append(id: string, html: string): void;
    prepend(id: string, html: string): void;
    morph(id: string, html: string): void;
    replace(id: string, html: string): void;
    remove(id: string): void;
    redirect(url: string): void;
    console(...args: unknown[]): void;
    alert(message: unknown): void;
  }
}

declare var hypergen: hypergen.Client;

interface DocumentEventMap {
  "hypergen:websocket:state": CustomEvent<hypergen.StateDetail>;
  "hypergen:websocket:message": CustomEvent<{ url: string; data: unknown }>;
  "hypergen:websocket:error": CustomEvent<{ url: string; code: string; message: string; id?: number | string | null }>;
  "hypergen:websocket:resync": CustomEvent<{ url: string; reason: string; seq: number | null; epoch: number | null }>;
  "hypergen:websocket:presence": CustomEvent<hypergen.PresenceFrame & { url: string }>;
}

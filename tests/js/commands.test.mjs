// Unit tests of the command registry and the built-in commands of hypergen-ws.js.
// The DOM commands run against a minimal fake DOM; real-browser tests live elsewhere.
import { test, describe } from "node:test";
import assert from "node:assert/strict";

await import(new URL("../../hypergen_ws/static/hypergen_ws/hypergen-ws.js", import.meta.url).href);
const hypergen = globalThis.hypergen;

/* ---------- a minimal fake DOM: enough for append/prepend/replace/remove/morph ---------- */

const VOID = new Set(["INPUT", "BR", "IMG", "HR"]);

class FakeNode {
  constructor(doc, nodeType, nodeName) {
    Object.assign(this, { ownerDocument: doc, nodeType, nodeName, parentNode: null, childNodes: [] });
  }
  get nextSibling() {
    const siblings = this.parentNode ? this.parentNode.childNodes : [];
    return siblings[siblings.indexOf(this) + 1] || null;
  }
  get lastChild() {
    return this.childNodes.at(-1) || null;
  }
  get isConnected() {
    return this.ownerDocument.body.contains(this);
  }
  contains(node) {
    for (; node; node = node.parentNode) if (node === this) return true;
    return false;
  }
  insertBefore(node, ref) {
    if (node.parentNode) node.parentNode.removeChild(node);
    const index = ref ? this.childNodes.indexOf(ref) : this.childNodes.length;
    if (index === -1) throw new Error("NotFoundError: ref is not a child");
    this.childNodes.splice(index, 0, node);
    node.parentNode = this;
    return node;
  }
  appendChild(node) {
    return this.insertBefore(node, null);
  }
  removeChild(node) {
    const doc = this.ownerDocument;
    if (node.contains(doc.activeElement)) doc.activeElement = doc.body; // like a browser: moving blurs
    this.childNodes.splice(this.childNodes.indexOf(node), 1);
    node.parentNode = null;
    return node;
  }
  remove() {
    if (this.parentNode) this.parentNode.removeChild(this);
  }
}

class FakeText extends FakeNode {
  constructor(doc, text) {
    super(doc, 3, "#text");
    this.nodeValue = text;
  }
}

class FakeElement extends FakeNode {
  constructor(doc, tag) {
    super(doc, 1, tag.toUpperCase());
    this.attrs = new Map();
    if (this.nodeName === "TEMPLATE") this.content = new FakeNode(doc, 11, "#document-fragment");
  }
  get id() {
    return this.getAttribute("id") || "";
  }
  get attributes() {
    return [...this.attrs].map(([name, value]) => ({ name, value }));
  }
  getAttribute(name) {
    return this.attrs.has(name) ? this.attrs.get(name) : null;
  }
  setAttribute(name, value) {
    this.attrs.set(name, String(value));
  }
  removeAttribute(name) {
    this.attrs.delete(name);
  }
  hasAttribute(name) {
    return this.attrs.has(name);
  }
  get value() {
    return this.dirtyValue !== undefined ? this.dirtyValue : this.getAttribute("value") || "";
  }
  set value(v) {
    this.dirtyValue = v;
  }
  focus() {
    this.ownerDocument.activeElement = this;
  }
  get innerHTML() {
    return this.childNodes.map(serialize).join("");
  }
  set innerHTML(html) {
    const parent = this.content || this;
    parent.childNodes = [];
    for (const node of parse(this.ownerDocument, html)) parent.appendChild(node);
  }
  set outerHTML(html) {
    for (const node of parse(this.ownerDocument, html)) this.parentNode.insertBefore(node, this);
    this.remove();
  }
  insertAdjacentHTML(where, html) {
    const nodes = parse(this.ownerDocument, html);
    const ref = where === "afterbegin" ? this.childNodes[0] || null : null;
    for (const node of nodes) this.insertBefore(node, ref);
  }
}

function parse(doc, html) {
  const root = new FakeNode(doc, 11, "#document-fragment");
  let parent = root;
  for (const [token, closing, tag, attrs] of String(html).matchAll(/<(\/?)([a-z0-9]+)([^>]*)>|[^<]+/gi)) {
    if (!tag) parent.appendChild(new FakeText(doc, token));
    else if (closing) parent = parent.parentNode;
    else {
      const element = new FakeElement(doc, tag);
      for (const [, name, value] of attrs.matchAll(/([a-z-]+)(?:="([^"]*)")?/gi)) element.setAttribute(name, value || "");
      parent.appendChild(element);
      if (!VOID.has(element.nodeName)) parent = element;
    }
  }
  return [...root.childNodes];
}

function serialize(node) {
  if (node.nodeType === 3) return node.nodeValue;
  const tag = node.nodeName.toLowerCase();
  const attrs = node.attributes.map((a) => ` ${a.name}="${a.value}"`).join("");
  return VOID.has(node.nodeName) ? `<${tag}${attrs}>` : `<${tag}${attrs}>${node.innerHTML}</${tag}>`;
}

function fakeDocument(bodyHtml) {
  const doc = { activeElement: null };
  doc.createElement = (tag) => new FakeElement(doc, tag);
  doc.body = new FakeElement(doc, "body");
  doc.body.innerHTML = bodyHtml;
  doc.activeElement = doc.body;
  doc.getElementById = (id) => {
    const walk = (node) => (node.nodeType === 1 && node.id === id ? node : node.childNodes.map(walk).find(Boolean));
    return walk(doc.body) || null;
  };
  return doc;
}

function setup(bodyHtml = "") {
  const logs = { log: [], warn: [], error: [] };
  const console = { log: (...a) => logs.log.push(a), warn: (...a) => logs.warn.push(a), error: (...a) => logs.error.push(a) };
  const document = fakeDocument(bodyHtml);
  const alerts = [];
  const assigned = [];
  const location = { href: "https://example.com/", assign: (url) => assigned.push(url) };
  const client = hypergen.createClient({ document, console, location, alert: (m) => alerts.push(m), WebSocket: null });
  return { client, document, logs, alerts, assigned, html: () => document.body.innerHTML };
}

/* ---------- registry ---------- */

describe("command registry", () => {
  test("register() validates its arguments with errors that name the problem", () => {
    const { client } = setup();
    assert.throws(() => client.commands.register("", () => {}), /name must be a non-empty string, got ""/);
    assert.throws(() => client.commands.register(5, () => {}), /name must be a non-empty string, got number/);
    assert.throws(() => client.commands.register("x", "alert"), /register\("x", fn\): fn must be a function, got "alert"/);
    assert.throws(() => client.commands.register("x"), /fn must be a function, got undefined/);
  });

  test("execute() runs commands in order with their arguments; unregister() removes them", () => {
    const { client } = setup();
    const calls = [];
    client.commands.register("my.add", (...args) => calls.push(["add", ...args]));
    client.commands.register("my.log", (text) => calls.push(["log", text]));
    client.commands.execute([["my.add", 1, 2], ["my.log", "x"], ["my.add"]]);
    assert.deepEqual(calls, [["add", 1, 2], ["log", "x"], ["add"]]);
    assert.equal(client.commands.has("my.add"), true);
    assert.equal(client.commands.unregister("my.add"), true);
    assert.equal(client.commands.unregister("my.add"), false);
    assert.equal(client.commands.has("my.add"), false);
  });

  test("an unknown command is reported, names the fix, and is never looked up on globalThis", () => {
    const { client, logs } = setup();
    const hits = [];
    globalThis.evilCommand = () => hits.push("global");
    globalThis.evil = { nested: () => hits.push("dotted") };
    try {
      client.commands.execute([["evilCommand"], ["evil.nested"], ["toString"], ["__proto__"], ["constructor"]]);
    } finally {
      delete globalThis.evilCommand;
      delete globalThis.evil;
    }
    assert.deepEqual(hits, []);
    assert.equal(logs.error.length, 5);
    assert.match(logs.error[0][0], /unknown command "evilCommand"/);
    assert.match(logs.error[1][0], /hypergen\.commands\.register\("evil\.nested", function/);
  });

  test("an exception in one command is logged and the following commands still run", async () => {
    const { client, logs } = setup();
    const ran = [];
    client.commands.register("bad", () => {
      throw new Error("bug");
    });
    client.commands.register("bad.async", async () => {
      throw new Error("async bug");
    });
    client.commands.register("good", (n) => ran.push(n));
    client.commands.execute([["good", 1], ["bad"], ["good", 2], ["bad.async"], ["good", 3]]);
    assert.deepEqual(ran, [1, 2, 3]);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(logs.error.length, 2);
    assert.match(logs.error[0][0], /command "bad" failed/);
    assert.equal(logs.error[1][1].message, "async bug");
  });

  test("malformed command lists and entries are logged and skipped", () => {
    const { client, logs } = setup();
    const ran = [];
    client.commands.register("ok", () => ran.push(1));
    client.commands.execute("ok");
    client.commands.execute([["ok"], "ok", [], [42], null, ["ok"]]);
    assert.deepEqual(ran, [1, 1]);
    assert.equal(logs.error.length, 5);
  });

  test("a registered command can replace a built-in", () => {
    const { client, alerts } = setup();
    const mine = [];
    client.commands.register("alert", (m) => mine.push(m));
    client.commands.execute([["alert", 42]]);
    assert.deepEqual([mine, alerts], [[42], []]);
  });

  test("the built-ins are registered, plus the 'alert' alias", () => {
    const { client } = setup();
    assert.deepEqual(client.commands.names().sort(), [
      "alert",
      "hypergen.alert",
      "hypergen.append",
      "hypergen.console",
      "hypergen.morph",
      "hypergen.prepend",
      "hypergen.redirect",
      "hypergen.remove",
      "hypergen.replace",
      "hypergen.websocket.close",
      "hypergen.websocket.open",
    ]);
    for (const name of ["append", "prepend", "morph", "replace", "remove", "redirect", "console", "alert"]) {
      assert.equal(typeof client[name], "function", name);
      assert.equal(typeof hypergen[name], "function", name);
    }
  });
});

/* ---------- built-in commands ---------- */

describe("built-in commands", () => {
  test("alert, console and redirect", () => {
    const { client, alerts, logs, assigned } = setup();
    client.commands.execute([["alert", 42], ["hypergen.alert", "hi"], ["hypergen.console", "a", 1], ["hypergen.redirect", "/next/"]]);
    assert.deepEqual(alerts, ["42", "hi"]);
    assert.deepEqual(logs.log, [["a", 1]]);
    assert.deepEqual(assigned, ["https://example.com/next/"]);
  });

  test("redirect follows relative and http(s) URLs only, unless the app adds a scheme", () => {
    const { client, logs, assigned } = setup();
    const hostile = ["javascript:alert(1)", " JavaScript:alert(1)", "java\tscript:alert(1)", "\njavascript:alert(1)",
      "data:text/html,<script>alert(1)</script>", "vbscript:msgbox(1)", "mailto:a@example.com", "http://[oops"];
    for (const url of hostile) client.commands.execute([["hypergen.redirect", url]]);
    assert.deepEqual(assigned, []);
    assert.equal(logs.error.length, hostile.length);
    assert.match(logs.error[0][0], /hypergen.redirect refused "javascript:alert\(1\)": only relative URLs and http:, https: URLs/);
    client.commands.execute([["hypergen.redirect", "../up"], ["hypergen.redirect", "http://other.example/x"],
      ["hypergen.redirect", "//cdn.example/y"], ["hypergen.redirect", "?page=2"]]);
    assert.deepEqual(assigned, ["https://example.com/up", "http://other.example/x", "https://cdn.example/y",
      "https://example.com/?page=2"]);
    client.redirectSchemes.push("mailto:");
    client.commands.execute([["hypergen.redirect", "mailto:a@example.com"]]);
    assert.equal(assigned.at(-1), "mailto:a@example.com");
    assert.deepEqual(hypergen.createClient({}).redirectSchemes, ["http:", "https:"], "each client has its own list");
  });

  test("append and prepend insert html at the end and start of the element", () => {
    const { client, html } = setup('<ul id="messages"><li>b</li></ul>');
    client.commands.execute([
      ["hypergen.append", "messages", "<li>c</li>"],
      ["hypergen.prepend", "messages", "<li>a</li>"],
    ]);
    assert.equal(html(), '<ul id="messages"><li>a</li><li>b</li><li>c</li></ul>');
  });

  test("replace swaps the element itself; remove deletes it", () => {
    const { client, html } = setup('<div id="a">x</div><p id="b">y</p>');
    client.commands.execute([["hypergen.replace", "a", '<span id="a2">new</span>'], ["hypergen.remove", "b"]]);
    assert.equal(html(), '<span id="a2">new</span>');
  });

  test("a missing target element is reported with its id and the next commands run", () => {
    const { client, logs, html } = setup('<div id="here"></div>');
    client.commands.execute([
      ["hypergen.append", "nowhere", "<b>x</b>"],
      ["hypergen.morph", "nowhere", "x"],
      ["hypergen.remove", "gone"],
      ["hypergen.append", "here", "ok"],
    ]);
    assert.equal(logs.error.length, 3);
    assert.match(logs.error[0][0], /hypergen\.append: no element with id "nowhere"/);
    assert.match(logs.error[2][0], /hypergen\.remove: no element with id "gone"/);
    assert.equal(html(), '<div id="here">ok</div>');
  });

  test("without a document the DOM commands report instead of throwing", () => {
    const logs = [];
    const client = hypergen.createClient({ document: null, console: { error: (...a) => logs.push(a) }, WebSocket: null });
    client.commands.execute([["hypergen.append", "x", "y"]]);
    assert.match(logs[0][0], /no element with id "x"/);
  });
});

describe("hypergen.morph", () => {
  test("the result matches the new html in assorted cases", () => {
    const cases = [
      ["<p>a</p>", "<p>b</p>"],
      ["<p>a</p><p>b</p><p>c</p>", "<p>a</p>"],
      ["", "<ul><li>1</li><li>2</li></ul>"],
      ["text<b>bold</b>", "<b>bold</b>text"],
      ['<div class="x" title="t">a</div>', '<div class="y">a</div>'],
      ["<p>a</p><div>b</div>", "<div>b</div><p>a</p><span>c</span>"],
      ['<li id="1">1</li><li id="2">2</li><li id="3">3</li>', '<li id="3">3</li><li id="1">one</li>'],
      ['<i id="k">x</i><b>y</b>', '<b>y</b><i id="other">x</i>'],
      ["<p>a</p>", ""],
    ];
    for (const [before, after] of cases) {
      const { client, html } = setup(`<div id="t">${before}</div>`);
      client.morph("t", after);
      assert.equal(html(), `<div id="t">${after}</div>`, `${before} -> ${after}`);
    }
  });

  test("unchanged nodes are kept (same objects), changed text is updated in place", () => {
    const { client, document } = setup('<div id="t"><h1>Title</h1><p>old</p></div>');
    const target = document.getElementById("t");
    const [h1, p] = target.childNodes;
    const text = p.childNodes[0];
    client.commands.execute([["hypergen.morph", "t", "<h1>Title</h1><p>new</p>"]]);
    assert.equal(target.childNodes[0], h1);
    assert.equal(target.childNodes[1], p);
    assert.equal(p.childNodes[0], text);
    assert.equal(text.nodeValue, "new");
  });

  test("an input that stays keeps its typed value and its focus, and gets the new attributes", () => {
    const { client, document } = setup('<form id="f"><input id="name" value="" class="a"><button>Go</button></form>');
    const input = document.getElementById("name");
    input.value = "typed by the user";
    input.focus();
    client.morph("f", '<p>Error: too short</p><input id="name" value="" class="b"><button>Go</button>');
    assert.equal(document.getElementById("name"), input);
    assert.equal(input.value, "typed by the user");
    assert.equal(input.getAttribute("class"), "b");
    assert.equal(document.activeElement, input);
  });

  test("elements with ids are moved, not recreated, when the order changes; focus is restored after a move", () => {
    const { client, document } = setup('<ul id="t"><li id="a">A</li><li id="b"><input id="in"></li></ul>');
    const [a, b] = document.getElementById("t").childNodes;
    const input = document.getElementById("in");
    input.focus();
    client.morph("t", '<li id="b"><input id="in"></li><li id="a">A</li>');
    assert.deepEqual(document.getElementById("t").childNodes, [b, a]);
    assert.equal(document.activeElement, input);
  });

  test("if the morph fails the content is replaced with innerHTML and the error is logged", () => {
    const { client, document, logs, html } = setup('<div id="t"><p class="x">a</p></div>');
    const p = document.getElementById("t").childNodes[0];
    p.setAttribute = () => {
      throw new Error("cannot set");
    };
    client.morph("t", '<p class="y">b</p>');
    assert.equal(html(), '<div id="t"><p class="y">b</p></div>');
    assert.match(logs.error[0][0], /morph failed/);
  });
});

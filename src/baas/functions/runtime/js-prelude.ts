/**
 * The Web API surface a JavaScript function sees, as guest code evaluated first in every QuickJS context: Headers,
 * Request, Response, URL, URLSearchParams, TextEncoder/TextDecoder, crypto.getRandomValues/randomUUID, console, fetch.
 * Everything that touches the outside goes through `host`, the few functions the worker gives the context (UTF-8,
 * random bytes, log lines, the allow-listed fetch); the guest has no other way out.
 */
export const JS_PRELUDE = String.raw`
(function (host) {
  'use strict';
  const lower = (name) => String(name).toLowerCase();
  class Headers {
    constructor(init) {
      this._map = new Map();
      if (init == null) return;
      if (init instanceof Headers) init.forEach((v, k) => this.append(k, v));
      else if (Array.isArray(init)) for (const [k, v] of init) this.append(k, v);
      else for (const k of Object.keys(init)) this.append(k, init[k]);
    }
    append(k, v) { const key = lower(k); const old = this._map.get(key); this._map.set(key, old === undefined ? String(v) : old + ', ' + v); }
    set(k, v) { this._map.set(lower(k), String(v)); }
    get(k) { const v = this._map.get(lower(k)); return v === undefined ? null : v; }
    has(k) { return this._map.has(lower(k)); }
    delete(k) { this._map.delete(lower(k)); }
    forEach(fn, self) { for (const [k, v] of this.entries()) fn.call(self, v, k, this); }
    entries() { return [...this._map.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))[Symbol.iterator](); }
    keys() { return [...this._map.keys()].sort()[Symbol.iterator](); }
    values() { return [...this.entries()].map((e) => e[1])[Symbol.iterator](); }
    [Symbol.iterator]() { return this.entries(); }
  }
  const enc = (s) => encodeURIComponent(s).replace(/%20/g, '+');
  const dec = (s) => { try { return decodeURIComponent(s.replace(/\+/g, ' ')); } catch (e) { return s; } };
  class URLSearchParams {
    constructor(init) {
      this._list = [];
      if (init == null || init === '') return;
      if (typeof init === 'string') {
        for (const part of init.replace(/^\?/, '').split('&')) {
          if (part === '') continue;
          const eq = part.indexOf('=');
          this._list.push(eq === -1 ? [dec(part), ''] : [dec(part.slice(0, eq)), dec(part.slice(eq + 1))]);
        }
      } else if (Array.isArray(init)) for (const [k, v] of init) this._list.push([String(k), String(v)]);
      else for (const k of Object.keys(init)) this._list.push([k, String(init[k])]);
    }
    append(k, v) { this._list.push([String(k), String(v)]); }
    set(k, v) { this.delete(k); this.append(k, v); }
    get(k) { const e = this._list.find((x) => x[0] === k); return e ? e[1] : null; }
    getAll(k) { return this._list.filter((x) => x[0] === k).map((x) => x[1]); }
    has(k) { return this._list.some((x) => x[0] === k); }
    delete(k) { this._list = this._list.filter((x) => x[0] !== k); }
    forEach(fn, self) { for (const [k, v] of this._list) fn.call(self, v, k, this); }
    entries() { return this._list.map((x) => [x[0], x[1]])[Symbol.iterator](); }
    keys() { return this._list.map((x) => x[0])[Symbol.iterator](); }
    values() { return this._list.map((x) => x[1])[Symbol.iterator](); }
    [Symbol.iterator]() { return this.entries(); }
    toString() { return this._list.map(([k, v]) => enc(k) + '=' + enc(v)).join('&'); }
  }
  const URL_RE = /^([a-zA-Z][a-zA-Z0-9+.-]*:)\/\/(?:([^:@\/]*)(?::([^@\/]*))?@)?(\[[^\]]*\]|[^:\/?#]*)(?::(\d*))?([^?#]*)(\?[^#]*)?(#.*)?$/;
  class URL {
    constructor(input, base) {
      let s = String(input);
      if (base !== undefined && !/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(s)) {
        const b = new URL(base);
        s = s.startsWith('//') ? b.protocol + s : s.startsWith('/') ? b.origin + s : s.startsWith('?') ? b.origin + b.pathname + s : b.origin + b.pathname.replace(/[^\/]*$/, '') + s;
      }
      const m = URL_RE.exec(s);
      if (!m) throw new TypeError('Invalid URL: ' + s);
      this.protocol = m[1].toLowerCase();
      this.username = m[2] || ''; this.password = m[3] || '';
      this.hostname = m[4].toLowerCase();
      const defaultPort = { 'http:': '80', 'https:': '443' }[this.protocol];
      this.port = m[5] && m[5] !== defaultPort ? m[5] : '';
      const segments = [];
      for (const seg of (m[6] || '/').split('/').slice(1)) { if (seg === '..') segments.pop(); else if (seg !== '.') segments.push(seg); }
      this.pathname = '/' + segments.join('/');
      this.searchParams = new URLSearchParams(m[7] || '');
      this._search = m[7] && m[7] !== '?' ? m[7] : '';
      this.hash = m[8] && m[8] !== '#' ? m[8] : '';
    }
    get host() { return this.hostname + (this.port ? ':' + this.port : ''); }
    get origin() { return this.protocol + '//' + this.host; }
    get search() { const q = this.searchParams.toString(); return this._search && q === new URLSearchParams(this._search).toString() ? this._search : q ? '?' + q : ''; }
    get href() { return this.origin + this.pathname + this.search + this.hash; }
    toString() { return this.href; }
    toJSON() { return this.href; }
  }
  class TextEncoder { get encoding() { return 'utf-8'; } encode(s) { return new Uint8Array(host.encode(String(s === undefined ? '' : s))); } }
  class TextDecoder {
    get encoding() { return 'utf-8'; }
    decode(b) { if (b == null) return ''; const u = b instanceof ArrayBuffer ? new Uint8Array(b) : new Uint8Array(b.buffer, b.byteOffset, b.byteLength); return host.decode(u.slice().buffer); }
  }
  const toBytes = (body) => {
    if (body == null) return null;
    if (typeof body === 'string') return new TextEncoder().encode(body);
    if (body instanceof ArrayBuffer) return new Uint8Array(body.slice(0));
    if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength));
    if (body instanceof URLSearchParams) return new TextEncoder().encode(body.toString());
    return new TextEncoder().encode(String(body));
  };
  class Body {
    _init(body) { this._bytes = toBytes(body); this._used = false; }
    get bodyUsed() { return this._used; }
    _take() { if (this._used) throw new TypeError('Body already used'); this._used = true; return this._bytes || new Uint8Array(0); }
    async arrayBuffer() { return this._take().slice().buffer; }
    async bytes() { return this._take().slice(); }
    async text() { return new TextDecoder().decode(this._take()); }
    async json() { return JSON.parse(await this.text()); }
  }
  class Request extends Body {
    constructor(input, init) {
      super();
      init = init || {};
      const from = input instanceof Request ? input : null;
      this.url = from ? from.url : new URL(String(input)).href;
      this.method = String(init.method || (from ? from.method : 'GET')).toUpperCase();
      this.headers = new Headers(init.headers || (from ? from.headers : undefined));
      this._init(init.body !== undefined ? init.body : from ? from._bytes : null);
      if (typeof init.body === 'string' && !this.headers.has('content-type')) this.headers.set('content-type', 'text/plain;charset=UTF-8');
    }
    clone() { return new Request(this, { body: this._bytes }); }
  }
  class Response extends Body {
    constructor(body, init) {
      super();
      init = init || {};
      this.status = init.status === undefined ? 200 : Number(init.status);
      if (!(this.status >= 200 && this.status <= 599)) throw new RangeError('status must be between 200 and 599');
      this.statusText = init.statusText || '';
      this.headers = new Headers(init.headers);
      this.url = '';
      this._init(body);
      if (typeof body === 'string' && !this.headers.has('content-type')) this.headers.set('content-type', 'text/plain;charset=UTF-8');
    }
    get ok() { return this.status >= 200 && this.status < 300; }
    clone() { return new Response(this._bytes, this); }
    static json(data, init) { const r = new Response(JSON.stringify(data), init); r.headers.set('content-type', 'application/json'); return r; }
    static redirect(url, status) { return new Response(null, { status: status || 302, headers: { location: String(url) } }); }
  }
  const format = (args) => args.map((a) => (typeof a === 'string' ? a : a instanceof Error ? a.stack || String(a) : (() => { try { return JSON.stringify(a); } catch (e) { return String(a); } })())).join(' ');
  const console = {};
  for (const level of ['debug', 'info', 'warn', 'error']) console[level] = (...args) => host.log(level, format(args));
  console.log = console.info;
  const crypto = {
    getRandomValues(array) {
      if (!ArrayBuffer.isView(array) || array.byteLength > 65536) throw new TypeError('getRandomValues takes an integer array of at most 65536 bytes');
      new Uint8Array(array.buffer, array.byteOffset, array.byteLength).set(new Uint8Array(host.random(array.byteLength)));
      return array;
    },
    randomUUID() {
      const b = crypto.getRandomValues(new Uint8Array(16));
      b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
      const h = [...b].map((x) => (x < 16 ? '0' : '') + x.toString(16)).join('');
      return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
    },
  };
  async function fetch(input, init) {
    const req = new Request(input, init);
    const body = req._bytes ? req._bytes.buffer : undefined;
    const answer = await host.fetch(JSON.stringify({ url: req.url, method: req.method, headers: [...req.headers] }), body);
    const meta = JSON.parse(answer[0]);
    const res = new Response(meta.status === 204 || meta.status === 304 ? null : new Uint8Array(answer[1]), { status: Math.max(200, meta.status), headers: meta.headers });
    if (meta.status < 200) res.status = meta.status;
    res.url = req.url;
    return res;
  }
  Object.assign(globalThis, { Headers, Request, Response, URL, URLSearchParams, TextEncoder, TextDecoder, console, crypto, fetch });
  globalThis.__dispatch = async (metaJson, body, envJson) => {
    const meta = JSON.parse(metaJson);
    const handler = globalThis.__handler;
    const request = new Request(meta.url, { method: meta.method, headers: meta.headers, body: meta.method === 'GET' || meta.method === 'HEAD' ? null : new Uint8Array(body) });
    const response = await handler.fetch(request, JSON.parse(envJson), { waitUntil() {}, passThroughOnException() {} });
    if (!(response instanceof Response)) throw new TypeError('fetch() must return a Response');
    const bytes = response._bytes || new Uint8Array(0);
    return [JSON.stringify({ status: response.status, headers: [...response.headers] }), bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)];
  };
})
`;

/** Runs a deployed CommonJS script and keeps its default export as the handler. */
export function wrapFunctionSource(source: string): string {
  return `(function () {
  const module = { exports: {} };
  (function (module, exports) {\n${source}\n})(module, module.exports);
  const handler = module.exports && module.exports.__esModule ? module.exports.default : module.exports.default || module.exports;
  if (!handler || typeof handler.fetch !== 'function') throw new TypeError('the module must export default { fetch(request, env) }');
  globalThis.__handler = handler;
})();`;
}

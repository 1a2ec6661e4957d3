/**
 * The host side of a JavaScript function's `fetch`, in the worker: only origins on the allow-list are reached (this
 * node's own API by default), redirects are handed back rather than followed (a redirect could leave the list), and
 * the answer is read up to the response limit. The guest has no other network path, so this check cannot be
 * bypassed from inside it.
 */
import http from 'node:http';
import https from 'node:https';
import type { FetchPolicy } from './protocol.js';

export class FetchRefused extends Error {}

export interface FetchAnswer {
  status: number;
  headers: [string, string][];
  body: Buffer;
}

export interface FetchCall {
  url: string;
  method: string;
  headers: [string, string][];
  body: Uint8Array | null;
}

/** True when `url`'s origin is on the policy's list. */
export function fetchAllowed(policy: FetchPolicy, url: string): boolean {
  let origin: string;
  try {
    origin = new URL(url).origin;
  } catch {
    return false;
  }
  return policy.allow.includes(origin);
}

export function hostFetch(policy: FetchPolicy, call: FetchCall, limit: number): Promise<FetchAnswer> {
  if (!fetchAllowed(policy, call.url)) {
    return Promise.reject(new FetchRefused(`fetch to ${safeOrigin(call.url)} is not allowed (FUNCTIONS_FETCH_ALLOW)`));
  }
  const target = new URL(call.url);
  const headers: Record<string, string> = {};
  for (const [name, value] of call.headers) {
    if (name === 'host' || name === 'connection' || name === 'content-length' || name === 'transfer-encoding') continue;
    headers[name] = value;
  }
  const toSelf = policy.selfOrigin !== null && target.origin === policy.selfOrigin && policy.selfAddress !== null;
  // The own API is reached on this node's loopback listener, as the invocation's Host (its tenant).
  const address = toSelf ? new URL(policy.selfAddress as string) : target;
  headers.host = toSelf ? policy.host : target.host;
  if (call.body) headers['content-length'] = String(call.body.byteLength);
  const client = address.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const request = client.request(
      { protocol: address.protocol, hostname: address.hostname.replace(/^\[|\]$/g, ''), port: address.port, path: target.pathname + target.search, method: call.method, headers },
      (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > limit) {
            request.destroy(new FetchRefused('fetch response over the limit'));
            return;
          }
          chunks.push(chunk);
        });
        response.on('end', () => {
          const out: [string, string][] = [];
          for (let i = 0; i < response.rawHeaders.length; i += 2) out.push([response.rawHeaders[i].toLowerCase(), response.rawHeaders[i + 1]]);
          resolve({ status: response.statusCode ?? 502, headers: out, body: Buffer.concat(chunks) });
        });
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(call.body ?? undefined);
  });
}

function safeOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'an invalid URL';
  }
}

/**
 * Nesting depth of client JSON. V8's JSON.parse takes any depth, but JSON.stringify and every recursive walk after it
 * (payload size, canonical ids, inspect, presence) overflow the stack at a few thousand levels and throw RangeError.
 * Client JSON is therefore refused past MAX_PAYLOAD_DEPTH, well below where any of those walks would fail.
 */
export const MAX_PAYLOAD_DEPTH = 1000;

const OPEN_OBJECT = 0x7b; // {
const OPEN_ARRAY = 0x5b; // [
const CLOSE_OBJECT = 0x7d; // }
const CLOSE_ARRAY = 0x5d; // ]
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Whether valid JSON text nests objects and arrays deeper than `max` (`{}` is depth 1, a scalar depth 0). One pass
 * over the characters, stopping as soon as the answer is yes. Text shorter than 2 * (max + 1) cannot be that deep,
 * so the common small message costs nothing.
 */
export function jsonTextDeeperThan(text: string, max: number): boolean {
  if (text.length < 2 * (max + 1)) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (++depth > max) return true;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      depth--;
    }
  }
  return false;
}

/** Whether a parsed JSON value nests deeper than `max`; iterative, so any depth is measured without recursion. */
export function jsonValueDeeperThan(value: unknown, max: number): boolean {
  if (value === null || typeof value !== 'object') return false;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (depth > max) return true;
    const children = Array.isArray(node) ? node : Object.values(node as Record<string, unknown>);
    for (const child of children) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}

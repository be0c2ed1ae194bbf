/**
 * Limits a webhook body must meet before it is parsed and enqueued: nesting depth (measured on the
 * raw bytes, so a pathological body costs one linear scan and no parse) and the size of the queue
 * message it becomes (a Queues message holds at most 128 KB; past that `send` fails every time).
 */

/** Deepest JSON nesting a webhook body may have; provider events nest a few levels. */
export const MAX_JSON_DEPTH = 32;

/** Cloudflare Queues' limit on one message (bytes of its serialised form). */
export const QUEUE_MESSAGE_LIMIT_BYTES = 128_000;

/** What the ingress lets a message weigh: the limit less a margin for what the platform adds. */
export const QUEUE_MESSAGE_BUDGET_BYTES = QUEUE_MESSAGE_LIMIT_BYTES - 8_000;

const OPEN_OBJECT = 0x7b;
const OPEN_ARRAY = 0x5b;
const CLOSE_OBJECT = 0x7d;
const CLOSE_ARRAY = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Whether the JSON text in `raw` nests objects/arrays deeper than `max` (brackets inside strings
 * do not count). Malformed text is left to `JSON.parse`; this only bounds the depth.
 */
export function jsonDepthExceeds(raw: Uint8Array, max: number = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i];
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) inString = true;
    else if (b === OPEN_OBJECT || b === OPEN_ARRAY) {
      if (++depth > max) return true;
    } else if (b === CLOSE_OBJECT || b === CLOSE_ARRAY) depth--;
  }
  return false;
}

/** Bytes of `message` as a `contentType: "json"` queue message carries it. */
export function queueMessageBytes(message: unknown): number {
  return new TextEncoder().encode(JSON.stringify(message)).length;
}

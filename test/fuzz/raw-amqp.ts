/**
 * Hand-built AMQP frames, for tests that send what no well-behaved client would encode:
 * the AMQP library's own encoder refuses or overflows on the messages these tests need
 * (a header table nested thousands of levels, a field of a type it does not know).
 */
import { Buffer } from 'node:buffer';
import type { AMQPChannel, AMQPClient } from '@cloudamqp/amqp-client';

const FRAME_END = 0xce;

function frame(type: number, channel: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(7);
  head.writeUInt8(type, 0);
  head.writeUInt16BE(channel, 1);
  head.writeUInt32BE(payload.length, 3);
  return Buffer.concat([head, payload, Buffer.from([FRAME_END])]);
}

export function shortString(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  return Buffer.concat([Buffer.from([bytes.length]), bytes]);
}

export function longString(bytes: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(bytes.length, 0);
  return Buffer.concat([head, bytes]);
}

/** A field table's wire form (its 4-byte length, then `content`: encoded key/value pairs). */
export function table(content: Buffer): Buffer {
  return longString(content);
}

/** The content of a table `{a: {a: {a: ... {}}}}`, `depth` levels deep (5 bytes a level). */
export function nestedTableContent(depth: number, leaf: Buffer = Buffer.alloc(0)): Buffer {
  // Built from the inside out into one buffer: no quadratic copying for deep nests.
  const size = leaf.length + depth * 7;
  const out = Buffer.alloc(size);
  let start = size - leaf.length;
  leaf.copy(out, start);
  for (let level = 0; level < depth; level++) {
    const innerLength = size - start;
    start -= 7;
    out.writeUInt8(1, start); // key: short string "a"
    out.write('a', start + 1);
    out.write('F', start + 2); // field type: table
    out.writeUInt32BE(innerLength, start + 3);
  }
  return out;
}

/** Basic properties in wire order; each value is already encoded (short string, table...). */
export interface RawProperties {
  contentType?: Buffer;
  headers?: Buffer;
  correlationId?: Buffer;
  replyTo?: Buffer;
  messageId?: Buffer;
  type?: Buffer;
}

export function properties(props: RawProperties): Buffer {
  // Property flags, in the order the properties follow one another on the wire.
  const order: Array<[keyof RawProperties, number]> = [
    ['contentType', 0x8000],
    ['headers', 0x2000],
    ['correlationId', 0x0400],
    ['replyTo', 0x0200],
    ['messageId', 0x0080],
    ['type', 0x0020],
  ];
  let flags = 0;
  const parts: Buffer[] = [];
  for (const [name, flag] of order) {
    const value = props[name];
    if (value === undefined) continue;
    flags |= flag;
    parts.push(value);
  }
  const head = Buffer.alloc(2);
  head.writeUInt16BE(flags, 0);
  return Buffer.concat([head, ...parts]);
}

/**
 * Publishes `body` with `encodedProperties` exactly as given, on a channel the library
 * opened, by writing the three frames to its socket.
 */
export function publishRaw(
  client: AMQPClient,
  channel: AMQPChannel,
  exchange: string,
  routingKey: string,
  encodedProperties: Buffer,
  body: Buffer,
): void {
  const method = Buffer.concat([
    Buffer.from([0, 60, 0, 40, 0, 0]), // basic.publish, reserved
    shortString(exchange),
    shortString(routingKey),
    Buffer.from([0]), // not mandatory, not immediate
  ]);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(60, 0);
  header.writeUInt16BE(0, 2);
  header.writeBigUInt64BE(BigInt(body.length), 4);
  const socket = client.socket;
  if (!socket) throw new Error('not connected');
  const frames = [
    frame(1, channel.id, method),
    frame(2, channel.id, Buffer.concat([header, encodedProperties])),
  ];
  // An empty body has no body frame.
  if (body.length > 0) frames.push(frame(3, channel.id, body));
  socket.write(Buffer.concat(frames));
}

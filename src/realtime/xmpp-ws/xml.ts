import { SaxesParser } from 'saxes';

/**
 * RFC 7395 framing, the parsing half: each WebSocket message holds complete top-level elements
 * (`<open/>`, `<close/>`, stanzas), so every frame is parsed on its own as an XML fragment and
 * turned into small element trees. Nothing is kept between frames: a broken frame cannot poison
 * the next one, and memory per connection stays at one frame.
 */

/** One parsed element. Names keep their prefix (`stream:features`); namespaces are plain attributes. */
export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlNode[];
}
export type XmlNode = XmlElement | string;

/** RFC 6120 §4.9.3 stream error conditions this parser can cause. */
export type FrameError = 'not-well-formed' | 'restricted-xml' | 'policy-violation';

/** Largest frame (and so stanza) accepted, in bytes (spec §14 item 1). */
export const MAX_FRAME_BYTES = 64 * 1024;
// A 64 KiB frame could still nest thousands of levels deep; real stanzas use fewer than ten.
const MAX_DEPTH = 32;

export type FrameResult = { ok: true; elements: XmlElement[] } | { ok: false; error: FrameError; reason: string };

/** Parses one WebSocket message into its top-level elements (whitespace between them is dropped). */
export function parseFrame(data: string): FrameResult {
  if (Buffer.byteLength(data) > MAX_FRAME_BYTES) return { ok: false, error: 'policy-violation', reason: 'stanza too large' };
  // RFC 6120 §11.1 forbids DTDs, comments, processing instructions and entity declarations in a
  // stream; checking the raw text too means no saxes version can ever expand a declared entity.
  if (/<!DOCTYPE|<!ENTITY/i.test(data)) return { ok: false, error: 'restricted-xml', reason: 'DTDs are not allowed' };

  const c = frameParser();
  c.top = [];
  c.stack = [];
  c.failure = null;
  try {
    c.parser.write(data);
    c.parser.close();
  } catch (e) {
    // saxes throws from write() when a handler throws; keep the first reason, and start the next
    // frame on a new parser (this one stopped somewhere inside the frame).
    c.fail('not-well-formed', e instanceof Error ? e.message : String(e));
    shared = null;
  }
  // Read through the type: TS cannot see the handlers' assignments made during write().
  if (!(c.failure as FrameParser['failure']) && c.stack.length > 0) c.fail('not-well-formed', 'unclosed element');
  const failure = c.failure as FrameParser['failure'];
  const top = c.top;
  c.top = [];
  c.stack = [];
  if (failure) return { ok: false, ...failure };
  return { ok: true, elements: top };
}

/** One frame's parse: the parser and what its handlers are building. */
interface FrameParser {
  parser: SaxesParser;
  top: XmlElement[];
  stack: XmlElement[];
  failure: { error: FrameError; reason: string } | null;
  fail(error: FrameError, reason: string): void;
}

// One parser for the process, reused frame after frame: saxes starts afresh after close(), and
// making a parser with its handlers cost about as much as parsing a short stanza. Frames are
// parsed synchronously, one at a time, so they never share it.
let shared: FrameParser | null = null;

function frameParser(): FrameParser {
  if (shared) return shared;
  const parser = new SaxesParser({ fragment: true });
  const c: FrameParser = {
    parser, top: [], stack: [], failure: null,
    fail(error, reason) {
      c.failure ??= { error, reason };
    },
  };
  parser.on('doctype', () => c.fail('restricted-xml', 'DTDs are not allowed'));
  parser.on('comment', () => c.fail('restricted-xml', 'comments are not allowed'));
  parser.on('processinginstruction', () => c.fail('restricted-xml', 'processing instructions are not allowed'));
  parser.on('xmldecl', () => c.fail('restricted-xml', 'XML declarations are not allowed'));
  parser.on('error', (e) => c.fail('not-well-formed', e.message));
  parser.on('opentag', (tag) => {
    if (c.stack.length >= MAX_DEPTH) return c.fail('policy-violation', 'elements nested too deep');
    const attrs: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const k in tag.attributes) {
      const v = tag.attributes[k];
      if (typeof v === 'string') attrs[k] = v;
    }
    const el: XmlElement = { name: tag.name, attrs, children: [] };
    const parent = c.stack[c.stack.length - 1];
    if (parent) parent.children.push(el);
    else c.top.push(el);
    c.stack.push(el);
  });
  parser.on('closetag', () => {
    c.stack.pop();
  });
  const onText = (t: string): void => {
    const parent = c.stack[c.stack.length - 1];
    if (parent) parent.children.push(t);
    // Text between top-level elements is only allowed as whitespace.
    else if (t.trim() !== '') c.fail('not-well-formed', 'text outside of a stanza');
  };
  parser.on('text', onText);
  parser.on('cdata', onText);
  shared = c;
  return c;
}

// An ack B exactly as the web SDKs write it: `<message …attributes…><received
// xmlns='urn:xmpp:receipts' id='…'/></message>`, values without markup or entities. Acks are
// half of all frames under load; this spares them the parser. Anything else is parsed.
const ACK_B = /^<message(?:\s+[A-Za-z:]+=(?:'[^'<>&]*'|"[^"<>&]*"))*\s*><received\s+xmlns=(?:'urn:xmpp:receipts'|"urn:xmpp:receipts")\s+id=(?:'([^'<>&]*)'|"([^"<>&]*)")\s*\/><\/message>$/;

/** The id an ack B frame of the SDKs' exact shape names, or null for any other frame. */
export function fastAckId(data: string): string | null {
  if (data.length > 1024 || !data.startsWith('<message')) return null;
  const m = ACK_B.exec(data);
  return m ? (m[1] ?? m[2] ?? '') : null;
}

/** The first child element named `name` (and, when given, with that xmlns). */
export function child(el: XmlElement, name: string, xmlns?: string): XmlElement | undefined {
  for (const c of el.children) if (typeof c !== 'string' && c.name === name && (xmlns === undefined || c.attrs.xmlns === xmlns)) return c;
  return undefined;
}

/** The element's child elements. */
export function elements(el: XmlElement): XmlElement[] {
  return el.children.filter((c): c is XmlElement => typeof c !== 'string');
}

/** The element's text content (its direct text children). */
export function text(el: XmlElement): string {
  return el.children.filter((c): c is string => typeof c === 'string').join('');
}

/** Escapes text or an attribute value. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}
const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

/** Serialises an element built by the stanza builders: attributes in the given order, undefined ones left out. */
export function xml(name: string, attrs: Record<string, string | undefined>, ...content: string[]): string {
  let s = `<${name}`;
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) s += ` ${k}="${esc(v)}"`;
  return content.length === 0 ? `${s}/>` : `${s}>${content.join('')}</${name}>`;
}

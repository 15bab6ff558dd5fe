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

  const parser = new SaxesParser({ fragment: true });
  const top: XmlElement[] = [];
  const stack: XmlElement[] = [];
  // A holder, not a `let`: TS does not see assignments made inside the handlers below.
  const state: { failure: { error: FrameError; reason: string } | null } = { failure: null };
  const fail = (error: FrameError, reason: string): void => {
    state.failure ??= { error, reason };
  };

  parser.on('doctype', () => fail('restricted-xml', 'DTDs are not allowed'));
  parser.on('comment', () => fail('restricted-xml', 'comments are not allowed'));
  parser.on('processinginstruction', () => fail('restricted-xml', 'processing instructions are not allowed'));
  parser.on('xmldecl', () => fail('restricted-xml', 'XML declarations are not allowed'));
  parser.on('error', (e) => fail('not-well-formed', e.message));
  parser.on('opentag', (tag) => {
    if (stack.length >= MAX_DEPTH) return fail('policy-violation', 'elements nested too deep');
    const attrs: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const [k, v] of Object.entries(tag.attributes)) if (typeof v === 'string') attrs[k] = v;
    const el: XmlElement = { name: tag.name, attrs, children: [] };
    const parent = stack[stack.length - 1];
    if (parent) parent.children.push(el);
    else top.push(el);
    stack.push(el);
  });
  parser.on('closetag', () => {
    stack.pop();
  });
  const onText = (t: string): void => {
    const parent = stack[stack.length - 1];
    if (parent) parent.children.push(t);
    // Text between top-level elements is only allowed as whitespace.
    else if (t.trim() !== '') fail('not-well-formed', 'text outside of a stanza');
  };
  parser.on('text', onText);
  parser.on('cdata', onText);

  try {
    parser.write(data);
    parser.close();
  } catch (e) {
    // saxes throws from write() when an error handler returns; keep the first reason.
    fail('not-well-formed', e instanceof Error ? e.message : String(e));
  }
  if (!state.failure && stack.length > 0) fail('not-well-formed', 'unclosed element');
  if (state.failure) return { ok: false, ...state.failure };
  return { ok: true, elements: top };
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

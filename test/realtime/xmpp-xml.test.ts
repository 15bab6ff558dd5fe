import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fastAckId, parseFrame, type XmlElement } from '../../src/realtime/xmpp-ws/xml.js';

/** The frame parser on its own: one parser reused frame after frame, and the ack B shortcut. */

const names = (els: XmlElement[]): string[] => els.map((e) => e.name);

describe('XMPP frame parsing', () => {
  test('a broken or hostile frame does not leak into the next one (the parser is shared)', () => {
    const cases: [string, string][] = [
      ['<message><body>unclosed', 'not-well-formed'],
      ['<message></iq>', 'not-well-formed'],
      ['<!-- hi --><message/>', 'restricted-xml'],
      ['<?xml version="1.0"?><message/>', 'not-well-formed'],
      ['<message/>text<iq/>', 'not-well-formed'],
      [`${'<a>'.repeat(40)}${'</a>'.repeat(40)}`, 'policy-violation'],
      ['<message a="1" a="2"/>', 'not-well-formed'],
    ];
    for (const [bad, error] of cases) {
      const r = parseFrame(bad);
      assert.equal(r.ok, false, bad);
      if (!r.ok) assert.equal(r.error, error, bad);
      const good = parseFrame('<message id="x"><body>ok &amp; fine</body></message><iq type="get"/>');
      assert.ok(good.ok, `after ${bad}`);
      if (good.ok) {
        assert.deepEqual(names(good.elements), ['message', 'iq']);
        const body = good.elements[0]!.children[0] as XmlElement;
        assert.equal(body.name, 'body');
        assert.deepEqual(body.children, ['ok & fine']);
        assert.equal(good.elements[0]!.attrs.id, 'x');
      }
    }
  });

  test('the ack B shortcut takes exactly the SDKs\' shape and leaves everything else to the parser', () => {
    const sdk = "<message from='demo#chat_bob@easemob.com/webim' to='easemob.com' id='CV1' xmlns='jabber:client'><received xmlns='urn:xmpp:receipts' id='1710048453863669760'/></message>";
    assert.equal(fastAckId(sdk), '1710048453863669760');
    assert.equal(fastAckId('<message id="9" to="easemob.com"><received xmlns="urn:xmpp:receipts" id="9"/></message>'), '9');
    for (const other of [
      // A body makes it a message, an entity needs decoding, another namespace is not an ack.
      "<message to='x'><body>hi</body><received xmlns='urn:xmpp:receipts' id='1'/></message>",
      "<message to='x'><received xmlns='urn:xmpp:receipts' id='1&amp;2'/></message>",
      "<message to='x'><received xmlns='urn:other' id='1'/></message>",
      "<message to='x'><received id='1' xmlns='urn:xmpp:receipts'/></message>",
      "<message to='x'><received xmlns='urn:xmpp:receipts' id='1'/></message><message/>",
      "<message to='x><received xmlns='urn:xmpp:receipts' id='1'/></message>",
      '<presence/>',
    ]) assert.equal(fastAckId(other), null, other);
  });
});

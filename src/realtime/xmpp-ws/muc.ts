import { ApiError } from '../../errors.js';
import type { GroupKind } from '../../store/store.js';
import { roomJid, userJid, type Address, type SessionContext } from './session-context.js';
import * as S from './stanzas.js';
import { child, elements, xml, type XmlElement } from './xml.js';

/**
 * The subset of MUC the Easemob SDKs lean on (spec §9) over the REST groups store: entering a
 * group one belongs to, joining and leaving chat rooms, listing one's groups. Membership is
 * REST's (GroupService); there is no occupant list and no presence broadcast to the room.
 */

/** A presence to `ROOM@conference.{domain}/nick`: enter (available) or leave (unavailable). */
export async function roomPresence(c: SessionContext, el: XmlElement, room: Address, type: string | undefined): Promise<void> {
  const me = S.fullJid(c.identity);
  const chatroom = child(el, 'roomtype', S.NS.roomtype)?.attrs.type === 'chatroom';
  const kind: GroupKind = chatroom ? 'room' : 'group';
  const bare = roomJid(c, room.name);
  const tags = chatroom ? [xml('roomtype', { xmlns: S.NS.roomtype, type: 'chatroom' })] : [];
  const nick = room.resource;
  const error = (from: string, errType: S.ErrorType, condition: string, message: string): void =>
    c.send(S.presenceError(from, me, el.attrs.id, errType, condition, message, xml('x', { xmlns: S.NS.muc }), ...tags));
  // XEP-0045 §7.2.1: entering needs a nickname; Easemob's is the user name.
  if (nick === null || nick === '' || nick.length > 256) return error(bare, 'modify', 'jid-malformed', 'a room presence goes to ROOM/nick');
  const from = `${bare}/${nick}`;
  if (type !== undefined && type !== 'unavailable') return error(from, 'modify', 'bad-request', `presence type ${type} is not for rooms`);

  let members;
  try {
    members = await c.s.groups.members(c.app, kind, room.name);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return error(from, 'cancel', 'item-not-found', `no ${chatroom ? 'chat room' : 'group'} ${room.name}`);
    throw e;
  }
  const mine = members.find((m) => m.userId === c.user.id);
  const self = (affiliation: string, role: string, codes: string[], presenceType?: string): void => {
    const x = xml('x', { xmlns: S.NS.mucUser }, xml('item', { affiliation, role }), ...codes.map((code) => xml('status', { code })));
    c.send(S.presence({ from, to: me, type: presenceType, id: el.attrs.id }, x, ...tags));
  };

  if (type === 'unavailable') {
    // Leaving a chat room ends the membership; a group stays joined (leaving one is a REST call).
    if (chatroom && mine && !mine.owner) await c.s.groups.removeMembers(c.app, 'room', room.name, [c.user.username]);
    // Status 110 is the SDKs' "leaveChatRoom" sign.
    return self('none', 'none', ['110'], 'unavailable');
  }
  if (!mine) {
    // A group's members are managed by its owner (REST); a non-member cannot walk in.
    if (!chatroom) return error(from, 'auth', 'registration-required', `${c.user.username} is not a member of group ${room.name}`);
    try {
      await c.s.groups.addMember(c.app, 'room', room.name, c.user.username);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      const d = e.description ?? '';
      // Web 1.4.x reports a full room (`reachChatRoomCapacity`) on error code 406.
      if (/maxusers/.test(d)) return error(from, 'cancel', 'not-acceptable', d);
      if (/blocked/.test(d)) return error(from, 'auth', 'forbidden', d);
      if (/already in/.test(d)) return self('member', 'participant', []);
      if (e.status === 404) return error(from, 'cancel', 'item-not-found', d);
      return error(from, 'cancel', 'not-allowed', d);
    }
  }
  const owner = mine?.owner === true;
  // Web 1.4.x fires joinChatRoomSuccess only for a room presence without a status code;
  // for groups it reads status 110 (self-presence, XEP-0045 §7.2.2).
  self(owner ? 'owner' : 'member', owner ? 'moderator' : 'participant', chatroom ? [] : ['110']);
}

/** `disco#items` on `conference.{domain}`: the user's groups (jid, name), as Easemob listed them. */
export async function roomItems(c: SessionContext, el: XmlElement): Promise<void> {
  const groups = await c.s.groups.joined(c.app, 'group', c.user.username);
  const items = groups.map((g) => xml('item', { jid: roomJid(c, g.groupId), name: g.name }));
  c.send(xml('iq', { xmlns: S.NS.client, type: 'result', id: el.attrs.id, from: `conference.${c.domain}`, to: S.fullJid(c.identity) },
    xml('query', { xmlns: S.NS.discoItems }, ...items)));
}

/**
 * A `muc#admin` query for a room's members or owner (web 1.x `queryRoomMember`): answered for
 * members of the group or chat room; changing affiliations is REST's (`chatgroups`, `chatrooms`).
 */
export async function roomAdmin(c: SessionContext, el: XmlElement, room: Address, query: XmlElement): Promise<void> {
  const me = S.fullJid(c.identity);
  const bare = roomJid(c, room.name);
  const error = (type: S.ErrorType, condition: string): void => c.send(S.iqError(el.attrs.id, type, condition, me, bare));
  if (el.attrs.type !== 'get') return error('cancel', 'not-allowed');
  const items = elements(query);
  const wanted = items.length === 1 && items[0]!.name === 'item' ? items[0]!.attrs.affiliation : undefined;
  if (wanted !== 'member' && wanted !== 'owner') return error('modify', 'bad-request');
  // The query names no kind: a group, else a chat room (one id generator mints both kinds).
  let members;
  for (const k of ['group', 'room'] as const) {
    try {
      members = await c.s.groups.members(c.app, k, room.name);
      break;
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) throw e;
    }
  }
  if (!members) return error('cancel', 'item-not-found');
  if (!members.some((m) => m.userId === c.user.id)) return error('auth', 'forbidden');
  const listed = members.filter((m) => m.owner === (wanted === 'owner'));
  const out = listed.map((m) => xml('item', { affiliation: wanted, jid: userJid(c, m.username), nick: m.username }));
  c.send(xml('iq', { xmlns: S.NS.client, type: 'result', id: el.attrs.id, from: bare, to: me }, xml('query', { xmlns: S.NS.mucAdmin }, ...out)));
}

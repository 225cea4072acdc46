#!/usr/bin/env node
// Over 500 lines: one fake puppet service (gRPC server, rooms, contacts, messages, fault injection) for the end-to-end tests.
/**
 * Offline Wechaty puppet-service gateway for end-to-end chatbot tests.
 *
 *  - serves a wechaty-puppet-mock puppet through wechaty-puppet-service's
 *    PuppetServer (gRPC, NO TLS) on 127.0.0.1:$GRPC_PORT with token $TOKEN
 *  - exposes a small JSON control API on 127.0.0.1:$HTTP_PORT so tests (in any
 *    language) can drive the mock WeChat world and inspect what the bot did.
 *
 * No network access is needed: everything runs on the loopback interface.
 * See README.md for the API.
 */
import http from 'node:http'
import { randomUUID } from 'node:crypto'

// Must be set before the PuppetServer starts (it is also passed as tls.disable).
process.env.WECHATY_PUPPET_SERVICE_NO_TLS_INSECURE_SERVER = 'true'

const { PuppetServer } = await import('wechaty-puppet-service')
const { PuppetMock, mock } = await import('wechaty-puppet-mock')
const PUPPET = await import('wechaty-puppet')
const { grpc } = await import('wechaty-grpc')
const { FileBox } = await import('file-box')
const PNG_1PX = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII='

const GRPC_HOST = process.env.GRPC_HOST || '127.0.0.1'
const GRPC_PORT = Number(process.env.GRPC_PORT || 8788)
const HTTP_HOST = process.env.HTTP_HOST || '127.0.0.1'
const HTTP_PORT = Number(process.env.HTTP_PORT || 8789)
const TOKEN = process.env.TOKEN || 'insecure_harness_token'
const QUIET = process.env.GATEWAY_QUIET === '1'

// ms since process start (includes module loading)
const sinceStart = () => Math.round(performance.now())
const logi = (...a) => { if (!QUIET) console.log(`[gateway +${sinceStart()}ms]`, ...a) }

/* ------------------------------------------------------------------------ *
 * gRPC compatibility shim for old clients (python-wechaty 0.10.x uses the   *
 * wechaty-grpc 0.20.x protos).                                              *
 * ------------------------------------------------------------------------ *
 * wechaty-grpc 1.x moved several optional string fields to new field numbers
 * and kept the old `google.protobuf.StringValue` ones as `*_deprecated`, but
 * the 1.x PuppetServer only READS the new fields.  So a 0.20 client that SETS a
 * room topic / announcement is silently treated as a GETTER, and when it GETS
 * them it reads the old wrapper field, which the server never fills.
 * We wrap the handlers registered on the gRPC server to translate both ways.
 */
const COMPAT_SHIM = process.env.COMPAT_SHIM !== '0' // COMPAT_SHIM=0 shows the raw 1.x server behaviour
const { StringValue } = await import('wechaty-grpc')
const compatCounters = {}
const bump = (k) => { compatCounters[k] = (compatCounters[k] || 0) + 1 }
// old wrapper field base name -> new field base name, where they differ
const RENAMED = { Filebox: 'FileBox' }

function deprecatedPairs (msg) {
  const pairs = []
  for (const m of Object.getOwnPropertyNames(Object.getPrototypeOf(msg))) {
    const mm = /^get(\w+)StringValueDeprecated$/.exec(m)
    if (!mm) continue
    const base = RENAMED[mm[1]] || mm[1]
    if (typeof msg[`get${base}`] === 'function' && typeof msg[`set${base}`] === 'function') pairs.push([mm[1], base])
  }
  return pairs
}

function wrapCompat (name, handler) {
  return function (call, callback) {
    const req = call.request
    // request: old client put the value in the StringValue wrapper -> copy to the new field
    if (req && typeof req.toObject === 'function') {
      for (const [old, base] of deprecatedPairs(req)) {
        if (!req[`has${old}StringValueDeprecated`]()) continue
        const hasNew = typeof req[`has${base}`] === 'function' ? req[`has${base}`]() : !!req[`get${base}`]()
        if (hasNew) continue
        req[`set${base}`](req[`get${old}StringValueDeprecated`]().getValue())
        bump(`${name}.request.${old}StringValueDeprecated`)
      }
    }
    // response: new server filled only the new field -> also fill the old wrapper field
    const cb = (err, res) => {
      if (!err && res && typeof res.toObject === 'function') {
        for (const [old, base] of deprecatedPairs(res)) {
          const v = res[`get${base}`]()
          if (typeof v !== 'string' || !v || res[`has${old}StringValueDeprecated`]()) continue
          const w = new StringValue(); w.setValue(v)
          res[`set${old}StringValueDeprecated`](w)
          bump(`${name}.response.${old}StringValueDeprecated`)
        }
      }
      return callback(err, res)
    }
    return handler.call(this, call, cb)
  }
}
const origAddService = grpc.Server.prototype.addService
grpc.Server.prototype.addService = function (service, impl) {
  if (service && service.roomTopic && service.roomAnnounce) {
    impl = { ...impl }
    if (COMPAT_SHIM) for (const k of Object.keys(impl)) impl[k] = wrapCompat(k, impl[k])
    // record every RPC the client makes (handy for debugging protocol issues), and fail the
    // calls a test armed with POST /faults (e.g. a "too frequent" answer to messageSendText)
    for (const k of Object.keys(impl)) {
      const h = impl[k]
      impl[k] = function (call, callback, ...rest) {
        rpcCounters[k] = (rpcCounters[k] || 0) + 1
        const fault = faults[k]
        if (fault && fault.count > 0 && typeof callback === 'function') {
          fault.count--
          const code = grpc.status[fault.code || 'UNKNOWN'] ?? grpc.status.UNKNOWN
          return callback(Object.assign(new Error(fault.message), { code, details: fault.message }))
        }
        return h.call(this, call, callback, ...rest)
      }
    }
  }
  return origAddService.call(this, service, impl)
}
const rpcCounters = {}
const faults = {} // rpc name -> { message, code, count }: armed by POST /faults

/* ------------------------------------------------------------------------ *
 * Harness puppet: PuppetMock + a recorded, stateful "server side"           *
 * ------------------------------------------------------------------------ */
let seq = 0
const sent = [] // messages the bot sent
const actions = [] // other things the bot did (kick, add, topic, ...)
const inbound = [] // messages injected via the control API
const waiters = new Set()
const announces = new Map()
const urlPayloads = new Map() // messageId -> UrlLinkPayload of injected `url` messages
const friendships = new Map() // friendshipId -> FriendshipPayload of injected friend requests

function record (list, entry) {
  const e = { seq: ++seq, timestamp: Date.now(), ...entry }
  list.push(e)
  for (const w of waiters) w()
  return e
}

class HarnessPuppet extends PuppetMock {
  get self () { return this.currentUserId }

  _botMessage (conversationId, type, fields) {
    const isRoom = this.mocker.cacheRoomPayload.has(conversationId)
    if (!isRoom && !this.mocker.cacheContactPayload.has(conversationId)) {
      throw new Error(`unknown conversation id ${conversationId}`)
    }
    if (isRoom && !this.mocker.roomPayload(conversationId).memberIdList.includes(this.self)) {
      throw new Error(`bot is not a member of room ${conversationId}`)
    }
    const id = 'msg_' + randomUUID()
    const payload = {
      id,
      talkerId: this.self,
      timestamp: Date.now(),
      type,
      ...(isRoom
        ? { roomId: conversationId, mentionIdList: fields.mentionIds || [] }
        : { listenerId: conversationId }),
      text: fields.text,
    }
    this.mocker.MessageMock.create(payload)
    record(sent, {
      messageId: id,
      kind: fields.kind,
      conversationId,
      roomId: isRoom ? conversationId : null,
      toId: isRoom ? null : conversationId,
      text: fields.text ?? null,
      mentionIds: fields.mentionIds || [],
      extra: fields.extra,
    })
    // Real puppets echo the bot's own messages back as `message` events.
    if (ECHO_SELF) this.emit('message', { messageId: id })
    return id
  }

  async messageSendText (conversationId, text, mentionIdList) {
    return this._botMessage(conversationId, PUPPET.types.Message.Text, { kind: 'text', text, mentionIds: mentionIdList })
  }

  async messageSendContact (conversationId, contactId) {
    return this._botMessage(conversationId, PUPPET.types.Message.Contact, { kind: 'contact', extra: { contactId } })
  }

  async messageSendUrl (conversationId, urlLinkPayload) {
    return this._botMessage(conversationId, PUPPET.types.Message.Url, { kind: 'url', text: urlLinkPayload?.url, extra: urlLinkPayload })
  }

  async messageSendMiniProgram (conversationId, mp) {
    return this._botMessage(conversationId, PUPPET.types.Message.MiniProgram, { kind: 'mini-program', extra: mp })
  }

  async messageSendLocation (conversationId, loc) {
    return this._botMessage(conversationId, PUPPET.types.Message.Location, { kind: 'location', extra: loc })
  }

  async messageSendFile (conversationId, file) {
    const id = this._botMessage(conversationId, PUPPET.types.Message.Attachment, { kind: 'file', text: file?.name, extra: { name: file?.name, mediaType: file?.mediaType } })
    try { this.mocker.cacheFileBoxPayload.set(id, file.toJSON()) } catch { /* not serializable: ignore */ }
    return id
  }

  async messageForward (conversationId, messageId) {
    const orig = this.mocker.cacheMessagePayload.get(messageId)
    return this._botMessage(conversationId, orig?.type ?? PUPPET.types.Message.Text, { kind: 'forward', text: orig?.text, extra: { messageId } })
  }

  // Injected `url` messages carry their own link (the stock mock returns a fixed one).
  async messageUrl (messageId) {
    return urlPayloads.get(messageId) || super.messageUrl(messageId)
  }

  async messageRecall (messageId) {
    record(actions, { action: 'message-recall', messageId })
    return true
  }

  /* rooms */
  _room (roomId) {
    if (!this.mocker.cacheRoomPayload.has(roomId)) throw new Error(`room ${roomId} not found`)
    return this.mocker.roomPayload(roomId)
  }

  async roomDel (roomId, contactId) {
    const room = this._room(roomId)
    const ids = Array.isArray(contactId) ? contactId : [contactId]
    const removed = ids.filter(id => room.memberIdList.includes(id))
    room.memberIdList = room.memberIdList.filter(id => !ids.includes(id))
    record(actions, { action: 'room-del', roomId, contactIds: ids, removed })
    if (removed.length) {
      setImmediate(() => this.emit('room-leave', { removeeIdList: removed, removerId: this.self, roomId, timestamp: Date.now() }))
    }
  }

  async roomAdd (roomId, contactId, inviteOnly) {
    const room = this._room(roomId)
    const ids = (Array.isArray(contactId) ? contactId : [contactId])
    for (const id of ids) if (!this.mocker.cacheContactPayload.has(id)) throw new Error(`contact ${id} not found`)
    const added = ids.filter(id => !room.memberIdList.includes(id))
    record(actions, { action: 'room-add', roomId, contactIds: ids, added, inviteOnly: !!inviteOnly, mode: ROOM_ADD_MODE })
    if (ROOM_ADD_MODE === 'invite') return // invitation sent, nobody joined yet
    room.memberIdList.push(...added)
    if (added.length) {
      setImmediate(() => this.emit('room-join', { inviteeIdList: added, inviterId: this.self, roomId, timestamp: Date.now() }))
    }
  }

  async roomTopic (roomId, topic) {
    const room = this._room(roomId)
    if (typeof topic === 'undefined') return room.topic
    const oldTopic = room.topic
    room.topic = topic
    record(actions, { action: 'room-topic', roomId, topic, oldTopic })
    setImmediate(() => this.emit('room-topic', { changerId: this.self, newTopic: topic, oldTopic, roomId, timestamp: Date.now() }))
  }

  async roomAnnounce (roomId, text) {
    this._room(roomId)
    if (typeof text === 'undefined') return announces.get(roomId) || ''
    announces.set(roomId, text)
    record(actions, { action: 'room-announce', roomId, text })
  }

  async roomCreate (contactIdList, topic) {
    const id = 'room_' + randomUUID().slice(0, 8) + '@chatroom'
    this.mocker.createRoom({ id, topic: topic || '', memberIdList: [this.self, ...contactIdList], ownerId: this.self, adminIdList: [] })
    record(actions, { action: 'room-create', roomId: id, contactIds: contactIdList, topic })
    return id
  }

  async roomQuit (roomId) {
    const room = this._room(roomId)
    room.memberIdList = room.memberIdList.filter(id => id !== this.self)
    record(actions, { action: 'room-quit', roomId })
  }

  async roomQRCode (roomId) { return `mock-qrcode://${roomId}` }

  async roomMemberRawPayload (roomId, contactId) {
    const c = this.mocker.contactPayload(contactId)
    return { avatar: c.avatar || '', id: contactId, name: c.name, inviterId: undefined, roomAlias: undefined }
  }

  async roomAvatar () { return FileBox.fromBase64(PNG_1PX, 'room-avatar.png') }

  async contactAvatar (contactId, file) {
    if (file) { record(actions, { action: 'contact-avatar-set', contactId, name: file.name }); return }
    return FileBox.fromBase64(PNG_1PX, `${contactId}.png`)
  }

  async contactAlias (contactId, alias) {
    const c = this.mocker.contactPayload(contactId)
    if (typeof alias === 'undefined') return c.alias || ''
    c.alias = alias === null ? undefined : alias
    record(actions, { action: 'contact-alias', contactId, alias })
  }

  async friendshipAccept (friendshipId) { record(actions, { action: 'friendship-accept', friendshipId }) }
  async friendshipRawPayload (id) { return friendships.get(id) || { id } }
  async friendshipAdd (contactId, hello) { record(actions, { action: 'friendship-add', contactId, hello }) }
  async tagContactAdd (tagId, contactId) { record(actions, { action: 'tag-contact-add', tagId, contactId }) }
  async tagContactRemove (tagId, contactId) { record(actions, { action: 'tag-contact-remove', tagId, contactId }) }
}

const ECHO_SELF = process.env.ECHO_SELF !== '0'
let ROOM_ADD_MODE = process.env.ROOM_ADD_MODE || 'join' // 'join' | 'invite'
// Re-emit the last N injected messages whenever a client (re)connects, as puppets replay history.
let REPLAY_ON_CONNECT = Number(process.env.REPLAY_ON_CONNECT || 0)

/* ------------------------------------------------------------------------ *
 * The seeded mock world (fixed ids so tests can hard-code them)            *
 * ------------------------------------------------------------------------ */
const DEFAULT_WORLD = {
  self: { id: 'bot_self', name: 'HarnessBot' },
  contacts: [
    { id: 'contact_alice', name: 'Alice' },
    { id: 'contact_bob', name: 'Bob' },
    { id: 'contact_carol', name: 'Carol' },
    { id: 'contact_dave', name: 'Dave' },
    { id: 'contact_eve', name: 'Eve' },
    { id: 'contact_mallory', name: 'Mallory' },
  ],
  rooms: [
    { id: 'room_dev@chatroom', topic: 'Dev Team', ownerId: 'contact_alice', memberIds: ['bot_self', 'contact_alice', 'contact_bob', 'contact_mallory'] },
    { id: 'room_fun@chatroom', topic: 'Fun Group', ownerId: 'bot_self', memberIds: ['bot_self', 'contact_alice', 'contact_carol'] },
    { id: 'room_ops@chatroom', topic: 'Ops', ownerId: 'contact_bob', memberIds: ['bot_self', 'contact_bob', 'contact_eve'] },
  ],
}
let WORLD = DEFAULT_WORLD
if (process.env.WORLD_FILE) {
  const fs = await import('node:fs')
  WORLD = JSON.parse(fs.readFileSync(process.env.WORLD_FILE, 'utf8'))
}

function contactPayload (c) {
  return {
    id: c.id,
    name: c.name || c.id,
    alias: c.alias,
    avatar: c.avatar || '',
    gender: PUPPET.types.ContactGender.Unknown,
    type: PUPPET.types.Contact.Individual,
    friend: c.friend !== false,
    phone: [],
    city: c.city || '',
    province: c.province || '',
    signature: c.signature || '',
    address: '',
    star: false,
    weixin: c.weixin || c.id,
  }
}

const mocker = new mock.Mocker()
// Environment behaviour: runs on every puppet start (a client's Start RPC).
mocker.use(function harnessLogin (m) {
  // The puppet logs out on every stop(); old clients call Stop+Start on connect, so log in on every start.
  if (!m.puppet.isLoggedIn) m.login(selfContact)
  logi(`puppet started by a client; logged in as ${selfContact.id}`)
  const t = setTimeout(() => m.puppet.emit('ready', { data: 'ready' }), 200)
  const r = REPLAY_ON_CONNECT > 0
    ? setTimeout(() => {
      const replay = inbound.slice(-REPLAY_ON_CONNECT)
      logi(`replaying ${replay.length} message(s) to the new client`)
      for (const e of replay) m.puppet.emit('message', { messageId: e.messageId })
    }, 400)
    : null
  return () => { clearTimeout(t); if (r) clearTimeout(r) }
})

const puppet = new HarnessPuppet({ mocker })

// Build the world once, before any client connects, so the control API works immediately.
const selfContact = mocker.createContact(contactPayload(WORLD.self))
for (const c of WORLD.contacts) mocker.createContact(contactPayload(c))
for (const r of WORLD.rooms) {
  mocker.createRoom({ id: r.id, topic: r.topic || '', memberIdList: [...r.memberIds], ownerId: r.ownerId, adminIdList: r.adminIds || [], avatar: '' })
  if (r.announce) announces.set(r.id, r.announce)
}
logi(`world: self=${selfContact.id}, ${WORLD.contacts.length} contacts, ${WORLD.rooms.length} rooms`)

const puppetServer = new PuppetServer({
  endpoint: `${GRPC_HOST}:${GRPC_PORT}`,
  puppet,
  token: TOKEN,
  tls: { disable: true },
})

/* ------------------------------------------------------------------------ *
 * HTTP control API                                                          *
 * ------------------------------------------------------------------------ */
function roomView (id) {
  const r = mocker.roomPayload(id)
  return {
    id: r.id,
    topic: r.topic,
    announce: announces.get(r.id) || '',
    ownerId: r.ownerId || null,
    adminIds: r.adminIdList || [],
    memberIds: [...r.memberIdList],
    members: r.memberIdList.map(mid => ({ id: mid, name: mocker.cacheContactPayload.get(mid)?.name ?? null })),
  }
}
const contactView = (c) => ({ id: c.id, name: c.name, alias: c.alias ?? null, friend: c.friend })

// Message kinds a test may inject (`kind` in the POST body); the value is the puppet's type.
const KINDS = {
  text: 'Text', url: 'Url', image: 'Image', file: 'Attachment', attachment: 'Attachment',
  'mini-program': 'MiniProgram', contact: 'Contact', emoticon: 'Emoticon', video: 'Video',
  audio: 'Audio', voice: 'Audio', location: 'Location', recalled: 'Recalled', 'chat-history': 'ChatHistory',
  transfer: 'Transfer', 'red-envelope': 'RedEnvelope', unknown: 'Unknown',
}

function injectMessage ({ id: givenId, from, roomId, toId, text, mentionIds = [], kind = 'text', url, title, description, ageMs = 0 }) {
  if (!puppet.isLoggedIn) throw httpError(409, 'bot is not logged in (puppet not started by a client yet)')
  if (!mocker.cacheContactPayload.has(from)) throw httpError(404, `contact ${from} not found`)
  if (!KINDS[kind]) throw httpError(400, `unknown kind ${kind} (one of ${Object.keys(KINDS).join(', ')})`)
  // A given `id` lets a test deliver one platform message to several gateways (several accounts
  // in one room see the same message id), as WeChat delivers it to every account in the room.
  if (givenId !== undefined && (typeof givenId !== 'string' || !givenId)) throw httpError(400, 'id must be a non-empty string')
  if (givenId && mocker.cacheMessagePayload.has(givenId)) throw httpError(409, `message ${givenId} exists`)
  const id = givenId || 'msg_' + randomUUID()
  const payload = {
    id,
    talkerId: from,
    // `ageMs` back-dates the message, e.g. to test how a bot treats old (replayed) messages.
    timestamp: Date.now() - Number(ageMs || 0),
    type: PUPPET.types.Message[KINDS[kind]],
    text,
    ...(roomId ? { roomId, mentionIdList: mentionIds } : { listenerId: toId }),
  }
  if (kind === 'url') urlPayloads.set(id, { url: url || text, title: title || text, description: description || '' })
  mocker.MessageMock.create(payload)
  puppet.emit('message', { messageId: id })
  record(inbound, { messageId: id, from, roomId: roomId || null, toId: toId || null, text, mentionIds, kind })
  return id
}

function httpError (status, message) { const e = new Error(message); e.status = status; return e }

async function readJson (req) {
  const chunks = []
  for await (const c of req) chunks.push(c)
  if (!chunks.length) return {}
  try { return JSON.parse(Buffer.concat(chunks).toString('utf8')) } catch { throw httpError(400, 'invalid JSON body') }
}

function filterLog (list, q) {
  const since = Number(q.get('since') || 0)
  return list.filter(e => e.seq > since &&
    (!q.get('roomId') || e.roomId === q.get('roomId')) &&
    (!q.get('toId') || e.toId === q.get('toId')) &&
    (!q.get('conversationId') || e.conversationId === q.get('conversationId')) &&
    (!q.get('action') || e.action === q.get('action')))
}

async function listWithWait (list, q) {
  const wait = Math.min(Number(q.get('wait') || 0), 30000)
  let items = filterLog(list, q)
  if (items.length || !wait) return items
  await new Promise(resolve => {
    const done = () => { clearTimeout(t); waiters.delete(check); resolve() }
    const check = () => { if (filterLog(list, q).length) done() }
    const t = setTimeout(done, wait)
    waiters.add(check)
  })
  items = filterLog(list, q)
  return items
}

const routes = []
const route = (method, pattern, fn) => routes.push({ method, re: new RegExp('^' + pattern.replace(/\{(\w+)\}/g, '(?<$1>[^/]+)') + '$'), fn })

route('GET', '/health', () => ({
  ok: true,
  grpcEndpoint: `${GRPC_HOST}:${GRPC_PORT}`,
  token: TOKEN,
  tls: false,
  loggedIn: puppet.isLoggedIn,
  selfId: puppet.isLoggedIn ? puppet.currentUserId : null,
  // the PuppetServer's event stream registers a `message` listener while a client is connected
  clientConnected: puppet.listenerCount('message') > 0,
  roomAddMode: ROOM_ADD_MODE,
  replayOnConnect: REPLAY_ON_CONNECT,
  pid: process.pid,
  rpcCounters,
  compatCounters,
  uptimeMs: sinceStart(),
}))

route('GET', '/world', () => ({
  self: WORLD.self,
  contacts: [...mocker.cacheContactPayload.values()].map(contactView),
  rooms: [...mocker.cacheRoomPayload.keys()].map(roomView),
}))

route('GET', '/contacts', () => [...mocker.cacheContactPayload.values()].map(contactView))
route('GET', '/contacts/{id}', ({ id }) => {
  const c = mocker.cacheContactPayload.get(id); if (!c) throw httpError(404, `contact ${id} not found`)
  return contactView(c)
})
route('POST', '/contacts', (_p, body) => {
  const id = body.id || 'contact_' + randomUUID().slice(0, 8)
  if (mocker.cacheContactPayload.has(id)) throw httpError(409, `contact ${id} exists`)
  mocker.createContact(contactPayload({ ...body, id }))
  return contactView(mocker.contactPayload(id))
})
route('POST', '/contacts/{id}/messages', ({ id }, body) => {
  if (typeof body.text !== 'string') throw httpError(400, 'body.text (string) required')
  return { messageId: injectMessage({ ...body, from: id, toId: puppet.currentUserId, roomId: undefined }) }
})
route('POST', '/contacts/{id}/friendship', ({ id }, body) => {
  if (!puppet.isLoggedIn) throw httpError(409, 'bot is not logged in (puppet not started by a client yet)')
  if (!mocker.cacheContactPayload.has(id)) throw httpError(404, `contact ${id} not found`)
  const friendshipId = 'friendship_' + randomUUID().slice(0, 8)
  friendships.set(friendshipId, {
    id: friendshipId, contactId: id, hello: body.hello || '', ticket: '', timestamp: Date.now(),
    type: PUPPET.types.Friendship.Receive,
  })
  puppet.emit('friendship', { friendshipId })
  return { friendshipId }
})

route('GET', '/rooms', () => [...mocker.cacheRoomPayload.keys()].map(roomView))
route('GET', '/rooms/{id}', ({ id }) => {
  if (!mocker.cacheRoomPayload.has(id)) throw httpError(404, `room ${id} not found`)
  return roomView(id)
})
route('POST', '/rooms', (_p, body) => {
  const id = body.id || 'room_' + randomUUID().slice(0, 8) + '@chatroom'
  if (mocker.cacheRoomPayload.has(id)) throw httpError(409, `room ${id} exists`)
  const memberIds = body.memberIds || []
  for (const m of memberIds) if (!mocker.cacheContactPayload.has(m)) throw httpError(404, `contact ${m} not found`)
  const selfId = WORLD.self.id
  const members = body.includeBot === false ? memberIds : [...new Set([selfId, ...memberIds])]
  mocker.createRoom({ id, topic: body.topic || '', memberIdList: members, ownerId: body.ownerId, adminIdList: [], avatar: '' })
  if (body.announce) announces.set(id, body.announce)
  return roomView(id)
})
route('POST', '/rooms/{id}/messages', ({ id }, body) => {
  if (!mocker.cacheRoomPayload.has(id)) throw httpError(404, `room ${id} not found`)
  if (typeof body.text !== 'string' || !body.from) throw httpError(400, 'body.from and body.text required')
  if (!body.force && !mocker.roomPayload(id).memberIdList.includes(body.from)) {
    throw httpError(409, `${body.from} is not a member of ${id} (pass "force": true to send anyway)`)
  }
  return { messageId: injectMessage({ ...body, roomId: id, toId: undefined }) }
})
route('POST', '/rooms/{id}/join', ({ id }, body) => {
  if (!mocker.cacheRoomPayload.has(id)) throw httpError(404, `room ${id} not found`)
  const ids = body.contactIds || (body.contactId ? [body.contactId] : [])
  if (!ids.length) throw httpError(400, 'body.contactIds required')
  for (const c of [...ids, body.inviter].filter(Boolean)) if (!mocker.cacheContactPayload.has(c)) throw httpError(404, `contact ${c} not found`)
  const room = mocker.RoomMock.load(id)
  const joining = ids.filter(c => !room.payload.memberIdList.includes(c)).map(c => mocker.ContactMock.load(c))
  const inviter = mocker.ContactMock.load(body.inviter || room.payload.ownerId || puppet.currentUserId)
  room.add(...joining).by(inviter) // updates memberIdList and emits `room-join`
  return roomView(id)
})
route('POST', '/rooms/{id}/leave', ({ id }, body) => {
  if (!mocker.cacheRoomPayload.has(id)) throw httpError(404, `room ${id} not found`)
  const ids = body.contactIds || (body.contactId ? [body.contactId] : [])
  const room = mocker.RoomMock.load(id)
  const leaving = ids.filter(c => room.payload.memberIdList.includes(c)).map(c => mocker.ContactMock.load(c))
  const remover = mocker.ContactMock.load(body.remover || ids[0])
  room.remove(...leaving).by(remover) // emits `room-leave`
  return roomView(id)
})
route('POST', '/rooms/{id}/topic', ({ id }, body) => {
  if (!mocker.cacheRoomPayload.has(id)) throw httpError(404, `room ${id} not found`)
  mocker.RoomMock.load(id).topic(body.topic).by(mocker.ContactMock.load(body.changer || mocker.roomPayload(id).ownerId || puppet.currentUserId))
  return roomView(id)
})

route('GET', '/sent', (_p, _b, q) => listWithWait(sent, q))
route('GET', '/actions', (_p, _b, q) => listWithWait(actions, q))
route('GET', '/inbound', (_p, _b, q) => listWithWait(inbound, q))
route('GET', '/log', (_p, _b, q) => {
  const since = Number(q.get('since') || 0)
  return [...sent.map(e => ({ log: 'sent', ...e })), ...actions.map(e => ({ log: 'action', ...e })), ...inbound.map(e => ({ log: 'inbound', ...e }))]
    .filter(e => e.seq > since).sort((a, b) => a.seq - b.seq)
})
route('DELETE', '/sent', () => { sent.length = 0; actions.length = 0; inbound.length = 0; return { ok: true, seq } })
route('POST', '/config', (_p, body) => {
  if (body.roomAddMode) {
    if (!['join', 'invite'].includes(body.roomAddMode)) throw httpError(400, 'roomAddMode must be join|invite')
    ROOM_ADD_MODE = body.roomAddMode
  }
  if (body.replayOnConnect !== undefined) REPLAY_ON_CONNECT = Number(body.replayOnConnect) || 0
  return { roomAddMode: ROOM_ADD_MODE, replayOnConnect: REPLAY_ON_CONNECT }
})
route('POST', '/faults', (_p, body) => {
  if (!body.rpc || !body.message) throw httpError(400, 'body.rpc and body.message required')
  faults[body.rpc] = { message: String(body.message), code: body.code, count: Number(body.count ?? 1) }
  return faults
})
route('POST', '/shutdown', () => { setTimeout(() => shutdown('POST /shutdown'), 50); return { ok: true } })

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x')
  const send = (status, obj) => {
    const body = JSON.stringify(obj, null, 1)
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  }
  try {
    for (const r of routes) {
      if (r.method !== req.method) continue
      const m = r.re.exec(decodeURIComponent(url.pathname))
      if (!m) continue
      const body = (req.method === 'POST') ? await readJson(req) : {}
      const out = await r.fn(m.groups || {}, body, url.searchParams)
      return send(200, out)
    }
    send(404, { error: `no route ${req.method} ${url.pathname}` })
  } catch (e) {
    send(e.status || 500, { error: String(e.message || e) })
  }
})

/* ------------------------------------------------------------------------ */
let stopping = false
async function shutdown (why) {
  if (stopping) return
  stopping = true
  logi('shutting down:', why)
  server.close()
  try { await puppetServer.stop() } catch (e) { logi('puppetServer.stop error', e.message) }
  try { if (puppet.state.active()) await puppet.stop() } catch { /* ignore */ }
  process.exit(0)
}
process.on('SIGINT', () => shutdown('SIGINT'))
process.on('SIGTERM', () => shutdown('SIGTERM'))

await puppetServer.start()
logi(`gRPC puppet service (NO TLS) on ${GRPC_HOST}:${GRPC_PORT} token=${TOKEN}`)
await new Promise(resolve => server.listen(HTTP_PORT, HTTP_HOST, resolve))
logi(`control API on http://${HTTP_HOST}:${HTTP_PORT}`)
console.log(`GATEWAY_READY grpc=${GRPC_HOST}:${GRPC_PORT} http=${HTTP_HOST}:${HTTP_PORT} token=${TOKEN} startup_ms=${sinceStart()}`)

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { prepare } from '../src/chatvault.js';
import { loadConfig } from '../src/config.js';
import { buildMessage } from '../src/domain/messages.js';
import { closeServices } from '../src/services.js';
import type { AppRow } from '../src/store/store.js';
import { MsgIdGenerator } from '../src/util/ids.js';
import { mulberry32 } from '../src/util/prng.js';
import { SCHEMA_FINGERPRINT } from '../src/store/sqlite/sqlite-schema.js';
import { ADMIN } from './harness.js';

const CACHE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bench/.data');

const WORDS = ['hello', 'world', 'meeting', 'tomorrow', 'lunch', 'project', 'deadline', 'ok', 'thanks', 'see', 'you', 'soon', 'coffee', 'report', 'call', 'me', 'later', '你好', '谢谢', '明天', '开会', '好的'];



export interface SeededData {
  dataDir: string;
  app: AppRow;
  clientId: string;
  clientSecret: string;
  count: number;
  firstTs: number;
  lastTs: number;
  seedSeconds: number;
}

/**
 * A data folder holding `count` chat messages of the demo app, written straight into the store
 * (as an import would), spread over `spanHours` (30 days by default) among 1,000 users: mostly text, some images and
 * locations, a tenth of them to groups.
 */
export async function seedMessages(count: number, log: (s: string) => void = () => {}, spanHours = 720): Promise<SeededData> {
  // Seeding ten million messages takes a while: keep each data set (deterministic, per schema
  // version of this build) under bench/.data/ and reuse it on the next run.
  const dataDir = path.join(CACHE, `messages-${count}${spanHours === 720 ? '' : `-in-${spanHours}h`}-${SCHEMA_FINGERPRINT}`);
  const marker = path.join(dataDir, 'seeded.json');
  if (fs.existsSync(marker)) {
    const cached = JSON.parse(fs.readFileSync(marker, 'utf8')) as SeededData;
    log(`reusing ${count} seeded messages in ${dataDir}`);
    return { ...cached, dataDir };
  }
  fs.rmSync(dataDir, { recursive: true, force: true });
  fs.mkdirSync(dataDir, { recursive: true });
  const config = loadConfig({ DATA_DIR: dataDir, LOG_LEVEL: 'silent', CHATVAULT_ADMIN: `${ADMIN.username}:${ADMIN.password}`, GROUP_COMMIT_MAX: '100000' });
  const s = await prepare(config);
  const app = (await s.store.getApp('demo', 'chat'))!;
  const rand = mulberry32(42); // seeded: every run stores the same messages
  const ids = new MsgIdGenerator(1);
  const firstTs = Date.UTC(2026, 0, 1);
  const span = spanHours * 3600 * 1000;
  const step = span / count;
  const t0 = Date.now();
  const CHUNK = 20000;
  for (let done = 0; done < count; ) {
    const n = Math.min(CHUNK, count - done);
    const rows = [];
    for (let i = 0; i < n; i++) {
      const k = done + i;
      const ts = Math.floor(firstTs + k * step);
      const from = `user${Math.floor(rand() * 1000)}`;
      const group = rand() < 0.1;
      const to = group ? `14115278864901${Math.floor(rand() * 50)}` : `user${Math.floor(rand() * 1000)}`;
      const r = rand();
      const words = Array.from({ length: 3 + Math.floor(rand() * 10) }, () => WORDS[Math.floor(rand() * WORDS.length)]).join(' ');
      const body =
        r < 0.85 ? { type: 'txt', msg: words }
          : r < 0.95 ? { type: 'img', url: `https://chat.example.com/demo/chat/chatfiles/${k}`, filename: `${k}.jpg`, secret: 'DRGM8OZrEeO1vafuJSo2IjHBeKlIhDp0GCnFu54xOF3M6KLr', size: { width: 960, height: 720 } }
            : { type: 'loc', lat: 39.9 + rand() * 0.2, lng: 116.3 + rand() * 0.2, addr: '西城区西便门桥' };
      rows.push(buildMessage(app.id, {
        from, to, chatType: group ? 'groupchat' : 'chat', bodies: [body],
        ext: rand() < 0.3 ? { priority: Math.floor(rand() * 5), source: 'bench' } : undefined,
        timestamp: ts, created: ts + 3, msgId: ids.next(ts),
      }));
    }
    await s.store.insertMessages(rows);
    done += n;
    if (done % 200000 === 0 || done === count) log(`seeded ${done}/${count} (${Math.round(done / ((Date.now() - t0) / 1000))}/s)`);
  }
  const seedSeconds = (Date.now() - t0) / 1000;
  await closeServices(s);
  const out: SeededData = { dataDir, app, clientId: app.clientId, clientSecret: app.clientSecret, count, firstTs, lastTs: Math.floor(firstTs + (count - 1) * step), seedSeconds };
  fs.writeFileSync(marker, JSON.stringify(out));
  return out;
}

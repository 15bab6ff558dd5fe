import type pg from 'pg';
import { takeBatch } from '../group-commit.js';
import type { MessageRow, NewMessage } from '../store.js';
import { MessagePartitions } from './postgres-partitions.js';
import type { PgParam } from './postgres-ql.js';
import { storedText } from './postgres-message-text.js';

const INSERT_SQL = `SELECT cv_insert_routed($1::int[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[],
  $7::text[], $8::text[], $9::text[], $10::float8[], $11::float8[], $12::text[], $13::text[], $14::bytea, $15::int[],
  $16::int[], $17::text[], $18::int[], $19::text[], $20::text[], $21::text[]) AS first`;

/** SQLSTATE of an insert into `messages` that found no partition for its timestamp. */
const NO_PARTITION = '23514';

interface PendingWrite {
  messages: NewMessage[];
  resolve(seqs: bigint[]): void;
  reject(err: unknown): void;
}

/** A place in the order seqs are taken in: wait for `prev`, call `done` once the seqs are taken. */
interface Turn {
  prev: Promise<void>;
  done: () => void;
}

const sqlState = (e: unknown): string | undefined => (e as { code?: unknown })?.code as string | undefined;

/**
 * The group-commit writer of chat messages: what arrives in one turn of the event loop is stored
 * by one multi-row call of cv_insert_messages (message-schema), up to `groupCommitMax` messages,
 * in one transaction; whatever queues while commits are in flight goes out together next.
 */
export class MessageWriter {
  /**
   * Group commits in flight at once, each on its own connection: two, so that one waits for the
   * disk while the next writes its rows (more gained nothing measurable here).
   */
  maxInFlight: number;
  readonly partitions: MessagePartitions;
  private pending: PendingWrite[] = [];
  private scheduled = false;
  private inFlight = 0;
  private idle: (() => void)[] = [];

  /** `hook`: the test hook to run before each COMMIT, if any (PostgresMessages.beforeCommit). */
  constructor(private readonly pool: pg.Pool, private readonly groupCommitMax: number, private readonly hook: () => (() => Promise<void>) | undefined) {
    this.partitions = new MessagePartitions(pool);
    this.maxInFlight = Math.max(1, Math.min(2, (pool.options.max ?? 10) - 1));
  }

  /** Queues messages for the next group commit; resolves with their seqs once committed. */
  insert(messages: NewMessage[]): Promise<bigint[]> {
    if (messages.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.pending.push({ messages, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // Everything that arrives in this turn of the event loop shares one commit.
        setImmediate(() => {
          this.scheduled = false;
          this.pump();
        });
      }
    });
  }

  /** Resolves once every queued write has been committed (or has failed). */
  flush(): Promise<void> {
    if (this.pending.length === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.idle.push(resolve);
      if (!this.scheduled && this.inFlight === 0) this.pump();
    });
  }

  private pump(): void {
    while (this.pending.length > 0 && this.inFlight < this.maxInFlight) {
      const batch = takeBatch(this.pending, this.groupCommitMax);
      this.inFlight++;
      void this.commitBatch(batch).finally(() => {
        this.inFlight--;
        // Writes that queued up meanwhile go out together now.
        if (this.pending.length > 0) this.pump();
        else if (this.inFlight === 0) for (const f of this.idle.splice(0)) f();
      });
    }
  }

  // The order seqs are taken in: each commit takes its seqs only after the commit before it took
  // theirs (its INSERT has run; its COMMIT, the wait for the disk, may still be under way), so
  // seq order is the order writes arrived in, while one commit's fsync overlaps the next's rows.
  private turns: Promise<void> = Promise.resolve();

  private takeTurn(): Turn {
    const prev = this.turns;
    let done!: () => void;
    this.turns = new Promise((resolve) => (done = resolve));
    return { prev, done };
  }

  private async commitBatch(batch: PendingWrite[]): Promise<void> {
    try {
      const seqs = await this.write(batch.flatMap((w) => w.messages), this.takeTurn());
      let i = 0;
      for (const w of batch) {
        w.resolve(seqs.slice(i, i + w.messages.length));
        i += w.messages.length;
      }
    } catch (e) {
      if (batch.length === 1) return batch[0]!.reject(e);
      // Nothing of the batch was committed. One bad write (a duplicate msg_id of an import)
      // must not fail the others that happened to share its commit: retry each on its own.
      const turns = batch.map(() => this.takeTurn());
      for (const [i, w] of batch.entries()) {
        try {
          w.resolve(await this.write(w.messages, turns[i]!));
        } catch (e2) {
          w.reject(e2);
        }
      }
    }
  }

  /** One transaction storing `ms` when `turn` comes; resolves with their seqs once committed. */
  private async write(ms: NewMessage[], turn: Turn): Promise<bigint[]> {
    let first: bigint;
    try {
      await this.partitions.ensure(ms.map((m) => m.timestamp));
      first = await this.runInsert(routedValues(ms), turn);
    } catch (e) {
      turn.done();
      if (sqlState(e) !== NO_PARTITION) throw e;
      // Someone dropped a partition, or our view of them is stale: look again, once.
      this.partitions.reset();
      await this.partitions.ensure(ms.map((m) => m.timestamp));
      first = await this.runInsert(routedValues(ms), this.takeTurn());
    }
    return ms.map((_m, i) => first + BigInt(i));
  }

  private async runInsert(values: PgParam[], turn: Turn): Promise<bigint> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    // Without a test hook the insert runs alone, as its own transaction: one round trip instead
    // of three (BEGIN, insert, COMMIT). The next commit takes its seqs only after this one took
    // theirs (`turn`), so seq order stays arrival order.
    const hook = this.hook();
    try {
      if (hook) await client.query('BEGIN');
      let first: bigint;
      try {
        await turn.prev;
        const r = await client.query<{ first: string }>({ name: 'cv_insert_messages', text: INSERT_SQL, values });
        first = BigInt(r.rows[0]!.first);
        turn.done();
        if (hook) {
          // Tests widen the window between taking seqs and committing (postgres-messages.ts).
          await hook();
          await client.query('COMMIT');
        }
      } catch (e) {
        turn.done();
        if (hook) await client.query('ROLLBACK').catch(() => undefined);
        throw e;
      }
      return first;
    } catch (e) {
      // A constraint violation leaves the connection clean; anything else might have left the
      // seq lock (a session lock) held: drop the connection rather than hand it on.
      if (!sqlState(e)?.startsWith('23')) broken = e instanceof Error ? e : new Error(String(e));
      throw e;
    } finally {
      turn.done();
      client.release(broken);
    }
  }
}

/** The parameters of cv_insert_messages for a batch (entities as one binary buffer and lengths). */
function insertValues(ms: NewMessage[]): PgParam[] {
  const texts = ms.map((m) => storedText(m.text));
  const col = <T>(f: (m: NewMessage) => T) => ms.map(f) as unknown as string[];
  return [
    col((m) => m.appId), col((m) => m.msgId), col((m) => m.uuid), col((m) => m.timestamp), col((m) => m.created),
    col((m) => m.from), col((m) => m.to), col((m) => m.chatType), col((m) => m.bodyType), col((m) => m.lat), col((m) => m.lng),
    texts.map((t) => t.fts) as string[], texts.map((t) => t.overflow) as string[],
    Buffer.concat(ms.map((m) => m.entity)), col((m) => m.entity.length),
  ];
}

/** The parameters of cv_insert_routed: those of cv_insert_messages, then the recipients and client ids. */
function routedValues(ms: NewMessage[]): PgParam[] {
  const rIdx: number[] = [];
  const rUsers: string[] = [];
  const cIdx: number[] = [];
  const cSenders: string[] = [];
  const cIds: string[] = [];
  const cTargets: string[] = [];
  ms.forEach((m, i) => {
    for (const u of m.recipients ?? []) {
      rIdx.push(i + 1);
      rUsers.push(u);
    }
    if (m.clientId !== undefined) {
      cIdx.push(i + 1);
      cSenders.push(m.from.toLowerCase());
      cIds.push(m.clientId);
      cTargets.push(m.to.toLowerCase());
    }
  });
  return [...insertValues(ms), rIdx as unknown as string[], rUsers, cIdx as unknown as string[], cSenders, cIds, cTargets];
}

const COPY_SQL = `SELECT cv_copy_messages($1::bigint[], $2::int[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[],
  $8::text[], $9::text[], $10::text[], $11::float8[], $12::float8[], $13::text[], $14::text[], $15::bytea, $16::int[]) AS n`;

/**
 * Stores messages copied from another store with their seqs kept, in one transaction (chatvault
 * migrate); those whose seq or msg_id is here already are left out. Resolves with how many were
 * stored. Not for a store being walked meanwhile (see cv_copy_messages).
 */
export async function copyMessagesIn(pool: pg.Pool, partitions: MessagePartitions, rows: MessageRow[]): Promise<number> {
  if (rows.length === 0) return 0;
  await partitions.ensure(rows.map((m) => m.timestamp));
  const r = await pool.query<{ n: number }>({ name: 'cv_copy_messages', text: COPY_SQL, values: [rows.map((m) => String(m.seq)), ...insertValues(rows)] });
  return Number(r.rows[0]!.n);
}


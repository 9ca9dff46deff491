// pg_smoke.js: a node-postgres client exercising the protocol paths drivers really use.
//
//   node pg_smoke.js postgres://app:app-secret@127.0.0.1:5432/app?sslmode=disable
//
// Prints "node-pg ok" and exits 0 on success; prints the error and exits 1 otherwise.
// The Go integration tests run it against PostgreSQL directly and through Slipstream.
'use strict';

const assert = require('node:assert/strict');
const { Client } = require('pg');

async function main(url) {
  const client = new Client({ connectionString: url });
  await client.connect();
  // A plain table, not a temporary one: behind a transaction-pooling proxy the next
  // statement may run on another server connection. The unique name keeps parallel runs apart.
  const table = `node_smoke_${process.pid}_${Date.now()}`;
  try {
    // Simple query protocol.
    const simple = await client.query('SELECT 1 AS one');
    assert.deepEqual(simple.rows, [{ one: 1 }]);

    // Extended protocol with an unnamed statement.
    const param = await client.query('SELECT $1::int + 1 AS n', [41]);
    assert.equal(param.rows[0].n, 42);

    // A named statement: the first run sends Parse, the second only Bind/Execute,
    // so it must still exist on whatever server connection runs it.
    const add = { name: 'add', text: 'SELECT $1::int + $2::int AS s' };
    const first = await client.query({ ...add, values: [1, 2] });
    assert.equal(first.rows[0].s, 3);
    const second = await client.query({ ...add, values: [40, 2] });
    assert.equal(second.rows[0].s, 42);

    // A transaction that is rolled back leaves nothing behind.
    await client.query(`CREATE TABLE ${table} (id int PRIMARY KEY)`);
    await client.query('BEGIN');
    await client.query(`INSERT INTO ${table} VALUES ($1)`, [7]);
    const inside = await client.query(`SELECT count(*)::int AS n FROM ${table}`);
    assert.equal(inside.rows[0].n, 1, 'row visible inside its transaction');
    await client.query('ROLLBACK');
    const after = await client.query(`SELECT count(*)::int AS n FROM ${table}`);
    assert.equal(after.rows[0].n, 0, 'row gone after ROLLBACK');
  } finally {
    // After a failure inside the transaction, ROLLBACK first so the DROP can run.
    await client.query('ROLLBACK').catch(() => {});
    await client.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
    await client.end();
  }
}

const url = process.argv[2];
if (!url) {
  console.error('usage: node pg_smoke.js CONNECTION_STRING');
  process.exit(2);
}
main(url).then(
  () => console.log('node-pg ok'),
  (err) => {
    console.error('node-pg failed:', err);
    process.exit(1);
  },
);

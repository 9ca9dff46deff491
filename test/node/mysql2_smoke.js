// mysql2_smoke.js: a mysql2 client exercising the protocol paths Node applications really use.
//
//   node mysql2_smoke.js mysql://app:app-secret@127.0.0.1:3307/app
//
// Prints "node-mysql2 ok" and exits 0 on success; prints the error and exits 1 otherwise.
// The Go integration tests run it against MariaDB directly and through Slipstream.
'use strict';

const assert = require('node:assert/strict');
const mysql = require('mysql2/promise');

async function main(url) {
  const conn = await mysql.createConnection({ uri: url, multipleStatements: true, dateStrings: true });
  // A plain table, not a temporary one: behind a transaction-pooling proxy the next
  // statement may run on another server connection. The unique name keeps parallel runs apart.
  const table = `mysql2_smoke_${process.pid}_${Date.now()}`;
  try {
    // A URL with an ssl parameter must have given a TLS connection.
    if (new URL(url).searchParams.has('ssl')) {
      assert.equal(conn.connection.stream.encrypted, true, 'ssl requested but the connection is not TLS');
    }

    // Text protocol (COM_QUERY).
    const [simple] = await conn.query('SELECT 1 AS one, NULL AS n, CAST(1.5 AS DECIMAL(5,2)) AS d');
    assert.deepEqual(simple, [{ one: 1, n: null, d: '1.50' }]);

    // Client-side interpolation with query(): still COM_QUERY.
    const [interp] = await conn.query('SELECT ? + 1 AS n, ? AS s', [41, "it's"]);
    assert.deepEqual(interp, [{ n: 42, s: "it's" }]);

    // Binary protocol (COM_STMT_PREPARE / EXECUTE); the second execute reuses the statement
    // mysql2 cached, so it must still exist wherever it runs.
    const [first] = await conn.execute('SELECT ? + ? AS s', [1, 2]);
    assert.equal(Number(first[0].s), 3);
    const [second] = await conn.execute('SELECT ? + ? AS s', [40, 2]);
    assert.equal(Number(second[0].s), 42);
    const [typed] = await conn.execute('SELECT ? AS s, ? AS b, CAST(? AS DATETIME) AS dt, ? AS n',
      ['ünïcode ✓', Buffer.from([0, 1, 255]), '2024-02-29 23:59:59', null]);
    assert.equal(typed[0].s, 'ünïcode ✓');
    assert.deepEqual([...typed[0].b], [0, 1, 255]);
    assert.equal(typed[0].dt, '2024-02-29 23:59:59');
    assert.equal(typed[0].n, null);
    const [many] = await conn.execute('SELECT seq FROM seq_1_to_1000 WHERE seq > ?', [0]);
    assert.equal(many.length, 1000);

    // Multiple statements and result sets in one query.
    const [sets] = await conn.query('SELECT 1 AS a; SELECT 2 AS b');
    assert.deepEqual(sets, [[{ a: 1 }], [{ b: 2 }]]);

    // Errors carry MySQL codes and leave the connection usable.
    await assert.rejects(conn.query('SELEC 1'), (err) => err.errno === 1064 && err.sqlState === '42000');
    await assert.rejects(conn.execute('SELECT * FROM no_such_table WHERE id = ?', [1]), (err) => err.errno === 1146);

    // Transactions: rolled back leaves nothing, committed stays.
    await conn.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, v VARCHAR(20))`);
    await conn.beginTransaction();
    await conn.execute(`INSERT INTO ${table} VALUES (?, ?)`, [1, 'rolled back']);
    const [inside] = await conn.execute(`SELECT COUNT(*) AS n FROM ${table}`);
    assert.equal(Number(inside[0].n), 1, 'row visible inside its transaction');
    await conn.rollback();
    const [afterRollback] = await conn.query(`SELECT COUNT(*) AS n FROM ${table}`);
    assert.equal(Number(afterRollback[0].n), 0, 'row gone after ROLLBACK');
    await conn.beginTransaction();
    await conn.execute(`INSERT INTO ${table} VALUES (?, ?)`, [2, 'committed']);
    await conn.execute(`INSERT INTO ${table} VALUES (?, ?)`, [3, 'committed']);
    await conn.commit();
    const [afterCommit] = await conn.execute(`SELECT id, v FROM ${table} ORDER BY id`);
    assert.deepEqual(afterCommit, [{ id: 2, v: 'committed' }, { id: 3, v: 'committed' }]);

    // COM_CHANGE_USER (to the same user here) starts a fresh session: user variables go.
    await conn.query("SET @x = 'before'");
    const u = new URL(url);
    await conn.changeUser({ user: decodeURIComponent(u.username), password: decodeURIComponent(u.password),
      database: u.pathname.slice(1) });
    const [changed] = await conn.query('SELECT @x AS x, DATABASE() AS db');
    assert.deepEqual(changed, [{ x: null, db: u.pathname.slice(1) }]);

    // A connection pool, as applications use mysql2.
    const pool = mysql.createPool({ uri: url, connectionLimit: 4 });
    try {
      const answers = await Promise.all([...Array(16).keys()].map((i) => pool.execute('SELECT ? * 2 AS n', [i])));
      assert.deepEqual(answers.map(([rows]) => Number(rows[0].n)), [...Array(16).keys()].map((i) => i * 2));
    } finally {
      await pool.end();
    }
  } finally {
    // After a failure inside the transaction, ROLLBACK first so the DROP can run.
    await conn.query('ROLLBACK').catch(() => {});
    await conn.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
    await conn.end();
  }
}

const url = process.argv[2];
if (!url) {
  console.error('usage: node mysql2_smoke.js mysql://USER:PASSWORD@HOST:PORT/DB');
  process.exit(2);
}
main(url).then(
  () => console.log('node-mysql2 ok'),
  (err) => {
    console.error('node-mysql2 failed:', err);
    process.exit(1);
  },
);

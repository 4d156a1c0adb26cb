// Checks mongotest with the Node.js driver (npm install mongodb@6): a
// retryable insert, session.withTransaction and a find.
// Usage: node node_check.js mongodb://127.0.0.1:27017/?replicaSet=rs0
const { MongoClient } = require('mongodb');
(async () => {
  const client = new MongoClient(process.argv[2] || "mongodb://127.0.0.1:27017/?replicaSet=rs0", { retryWrites: true, serverSelectionTimeoutMS: 5000 });
  await client.connect();
  const coll = client.db('nodecheck').collection('c');
  await coll.deleteMany({});
  const r = await coll.insertOne({ _id: 'retryable', n: 1 });
  console.log('insertOne', r.acknowledged, r.insertedId);
  const session = client.startSession();
  try {
    await session.withTransaction(async () => {
      await coll.insertOne({ _id: 'txn1' }, { session });
      await coll.updateOne({ _id: 'retryable' }, { $inc: { n: 1 } }, { session });
    });
  } finally { await session.endSession(); }
  const docs = await coll.find({}).sort({ _id: 1 }).toArray();
  console.log('find', JSON.stringify(docs));
  await client.close();
})().catch(e => { console.error('ERROR', e); process.exit(1); });

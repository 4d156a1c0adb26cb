# Checks mongotest with the Python driver (pymongo): transactions, aborts,
# retryable writes and transient retries under failCommand, unique indexes.
# Usage: go run ./cmd/mongotest -addr 127.0.0.1:27017 &
#        python3 python_check.py mongodb://127.0.0.1:27017/?replicaSet=rs0
import sys
from pymongo import MongoClient
from pymongo.errors import OperationFailure, DuplicateKeyError
uri = sys.argv[1]
c = MongoClient(uri, serverSelectionTimeoutMS=5000)
print("ping", c.admin.command("ping"))
db = c.pycheck
db.accounts.drop()
db.accounts.insert_many([{"_id": "a", "bal": 100}, {"_id": "b", "bal": 0}])
def transfer(s):
    r = db.accounts.update_one({"_id": "a", "bal": {"$gte": 30}}, {"$inc": {"bal": -30}}, session=s)
    assert r.modified_count == 1
    db.accounts.update_one({"_id": "b"}, {"$inc": {"bal": 30}}, session=s)
with c.start_session() as s:
    s.with_transaction(transfer)
print("after txn", sorted((d["_id"], d["bal"]) for d in db.accounts.find()))
# abort path
try:
    with c.start_session() as s:
        with s.start_transaction():
            db.accounts.update_one({"_id": "a"}, {"$inc": {"bal": -1}}, session=s)
            raise RuntimeError("boom")
except RuntimeError:
    pass
print("after abort", sorted((d["_id"], d["bal"]) for d in db.accounts.find()))
# retryable write + fail point
c.admin.command({"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": {"failCommands": ["insert"], "errorCode": 91}})
db.accounts.insert_one({"_id": "c", "bal": 1})
print("retryable insert count", db.accounts.count_documents({"_id": "c"}))
# transient error inside with_transaction is retried
c.admin.command({"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": {"failCommands": ["update"], "errorCode": 112, "errorLabels": ["TransientTransactionError"]}})
with c.start_session() as s:
    s.with_transaction(lambda s: db.accounts.update_one({"_id": "c"}, {"$inc": {"bal": 1}}, session=s))
print("after transient retry", db.accounts.find_one({"_id": "c"})["bal"])
db.accounts.create_index("bal", unique=True)
try:
    db.accounts.insert_one({"_id": "d", "bal": 2})
except DuplicateKeyError as e:
    print("duplicate key", e.code)
print(list(db.accounts.aggregate([{"$group": {"_id": None, "total": {"$sum": "$bal"}}}])))

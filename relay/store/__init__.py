"""The embedded database of what the /video/v1 API creates: live streams, their targets and keys.

Theory of operation. One SQLite file (`relay.sqlite3` in the state directory, mode 0600)
in WAL mode with `synchronous=FULL`: every change is one transaction, so a relay killed
at any moment of a write finds the change wholly there or wholly absent when it starts
again. The schema is versioned (`PRAGMA user_version`) and brought up to date by
numbered migrations when the file opens. The operator's YAML is never written.

The event loop never waits on the disk: `Store` runs every call on one dedicated worker
thread (so writes keep their order), and the API awaits the result. The records are
plain frozen values (keys as `Secret`s): the store knows nothing of the running relay.

Modules:
- records.py: the live stream and target records, and their ids and keys, pure;
- schema.py: the tables, the schema version and the migrations;
- database.py: the SQLite file: open (mode, WAL, migrate), load, save, delete; blocking;
- store.py: the database on its own thread, for the event loop.
"""

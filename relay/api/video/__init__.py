"""Mux's live stream and simulcast target API, self-hosted: /video/v1, at Mux's paths and in its shapes.

Theory of operation. An app written against Mux's API (or its SDKs) creates a live
stream with simulcast targets, hands the returned stream key to its user's encoder, and
adds, changes or removes targets later, by changing only the base URL and the
credentials. The routes (routes.py) check the access token (access.py) and the body
(requests.py); the catalog (catalog.py) builds the live stream with the config's own
models (build.py), writes it to the database (relay/store/) off the event loop, then puts
it into the running relay. Answers are Mux's objects (objects.py) and errors (errors.py).
Live streams of the config file are shown too, read-only.

Modules:
- routes.py: the aiohttp handlers, access checks, answers;
- access.py: HTTP Basic access tokens with read or read+write permission;
- requests.py: the request bodies and queries, and messages that name the field;
- catalog.py: the API's live streams: check, store, apply, announce (webhooks);
- listing.py: the read side: Mux's objects of both kinds of live stream, keys to scrub, clashes with the file;
- build.py: a record as a LiveStreamConfig, through the config's models;
- objects.py: Mux's live stream and simulcast target objects;
- errors.py: Mux's error bodies and codes;
- opening.py: the database opened at start-up, and what it holds put to run.
"""

"""A live stream: who publishes on its key, its targets, its meter and its health.

Theory of operation. A LiveStream (stream.py) exists for each configured live stream,
from start-up or a reload. A publisher claims it (relay/ingest/), and every tag it sends
goes to the stream's hub (relay/fanout/hub.py), which the targets (relay/targets/), the
recorder (relay/recording/) and the ingest meter subscribe to. When the publisher's
connection drops without Stop Streaming, the stream holds its targets for the
reconnect window. The meter measures what the publisher sends (codecs, resolution,
bitrate, keyframe interval); the health rules compare that with what platforms ask.

Modules:
- stream.py: the live stream: claim and release, the reconnect window, reload of its
  targets (prepare, then apply), its snapshot and its status changes;
- retarget.py: the plan of a reload's targets: kept (relabelled), new, retired, and which
  new one waits for an old one to unpublish;
- news.py: which target status changes observers (webhooks) hear of, pure;
- meter.py: the ingest meter, pure: tags in, an IngestReading out;
- metertap.py: the meter as a hub subscriber, with the loop's clock and decoded onMetaData;
- health.py: stream-health rules, pure: a reading in, issues out, each episode once;
- slatefit.py: the settings the reconnect slate must match (relay/slate/), from the meter's
  reading, pure.
"""

"""The reconnect slate: what the platforms see while the publisher is away, instead of nothing.

Theory of operation. Inside the reconnect window (relay/live/stream.py) the targets stay
connected; without a slate they are sent nothing, and platforms show a spinner, then end
the broadcast. So each live stream with `reconnect_slate.enabled` has a SlatePlayer
(player.py), a hub subscriber that watches what the publisher sends. At a publish session's
first keyframe, the stream's settings (codecs, size, frame rate, audio format: measured by
relay/live/meter.py) are known, and the player asks the process's SlateStudio (studio.py)
for a clip that matches them: 2 s of a still picture (the configured image, or a card
with the live stream's name) with a keyframe every 2 s and silent audio, made once, off the
event loop, by an ffmpeg subprocess, and cached per settings. The show never waits for it.

When the publisher drops without Stop Streaming, the player waits `after` seconds, then
feeds the clip through the live stream's hub as if the publisher sent it: its sequence
headers first (a header change, which every connection passes on in order:
relay/fanout/primer.py), then its frames from a keyframe, looped, their timestamps going
on from the publisher's last one by the time it has been away (playout.py). Targets and
the recording take it like any other tag. When the publisher comes back, the player stops
at once and says how long ago its last tag was due: the targets resync at the publisher's
first keyframe (relay/fanout/queue.py) that much later on their timeline
(relay/fanout/timeline.py), with its headers, which differ from the slate's and so go out.

Modules:
- settings.py: what a slate must match (SlateSettings) and the ffmpeg command that makes
  it, pure;
- playout.py: the clip as tags, and which of them to feed at a given moment with which
  timestamps, pure (the clock is passed in);
- studio.py: making clips with ffmpeg subprocesses, off the loop, and the cache;
- player.py: one live stream's slate: preparing, the `after` timer, playing through the hub.
"""

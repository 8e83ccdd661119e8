"""Recording: FLV file bytes, metadata, crash recovery, retention and names (pure), and the recorder.

Theory of operation. A recording is one FLV file per publish session, written as the
tags arrive by relay/recording/recorder.py, which owns the file and its writer thread. Every
decision about the bytes lives here and is tested with bytes, without a disk:

- flvfile.py turns tags into file bytes: the FLV header, one onMetaData tag whose
  `duration` and `filesize` are AMF0 numbers at known offsets (metadata.py places them),
  then every tag with its PreviousTagSize back-pointer; audio and video payloads are
  passed through untouched. At the end it computes the patches (duration, filesize,
  header flags) that are written in place before the file gets its final name.
- recovery.py walks a `.part` file left by a crash, finds its last complete tag and
  computes the same patches, so a torn tail is cut and the file finalised like any other.
- retention.py picks which finished recordings of a folder to delete.
- names.py says how files are named and which names belong to us.

Those modules import no asyncio and touch no file: reads are passed in as a function.
The I/O half carries their decisions out:

- recorder.py: one session's recording, a hub subscriber whose file a writer thread writes;
- sessions.py: every recording of the relay: a Recorder per publish session, rejoins
  inside the reconnect window, what follows a session's end, leftovers at start;
- files.py: the blocking file operations, and running them off the loop;
- remux.py: MP4 from a finished FLV with ffmpeg, checked with ffprobe.
"""

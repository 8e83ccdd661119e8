"""Real peers and tools shared by the tests and the benchmarks.

tests/, bench/ and fuzz/ all import from here; this package imports none of them (a test,
tests/test_layout.py, keeps it so). It is not part of the relay: setuptools packages only
`relay*`, so it never ships in the wheel. It is imported from the repository root (pytest
puts the rootdir on sys.path; bench/ and fuzz/ scripts put it there themselves).

- `relay_proc.py`: the relay daemon as a real process; tests wait on its JSON log events.
- `ffmpeg.py`: ffmpeg as a real RTMP publisher and as a one-shot RTMP server.
- `nginx.py`: nginx with the RTMP module, as a recording target and as the reference relay.
- `throttle.py`: a slow network path, a TCP proxy that reads at a fixed rate.
- `background.py`: a server on its own asyncio loop in a thread, driven from synchronous code.
- `media.py`: the test clip, made once by ffmpeg and cached under .cache/media/.
- `captures.py`: the recorded real publish sessions in tests/fixtures/captures/.
- `ports.py`: free ports, and waiting for a listener without sleeping blindly.
"""

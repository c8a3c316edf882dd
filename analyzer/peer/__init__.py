"""A realistic local realtime peer for tests, the demo and benchmarks.

- :mod:`analyzer.peer.server`: OpenAI Realtime-compatible server (beta and GA), server VAD,
  barge-in, function calls, G.711, and its own record of every frame and turn.
- :mod:`analyzer.peer.client`: a scripted voice client speaking the shipped utterances.
- :mod:`analyzer.peer.harness`: the server and mitmdump as real, time-bounded subprocesses.
- :mod:`analyzer.peer.demo`: record two conversations through mitmdump and show the capture.
"""

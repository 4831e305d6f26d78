"""Defaults an editor meets in ``--help``, the Python API and the stages alike: one constant
each, in a module that imports nothing (so ``facepipe --help`` stays instant)."""

#: Strength of appearance transferred from the actor's own frames. On the 12 talking shared
#: clips (happy, first 40 frames) 0 / 0.5 / 1 gave a happy top share of 55 / 60 / 63% and a
#: lowest speech r of 0.901 / 0.901 / 0.896: 1 took the smallest face (dpe, 256x256) below the
#: 0.9 the edit must keep, 0.5 did not (benchmarks/results/edit_quality*.md). dpe's r is
#: fragile: since the 1+4 corrective, which changes only its brows, it reads 0.877 at 0.5 and
#: 0.885 / 0.907 at 0.25 / 0.35, so the default was not moved to chase it (benchmarks/README.md).
APPEARANCE_STRENGTH = 0.5

#: Strength of the temporal smoothing of the edit (the smooth stage; 0 = off).
SMOOTH = 0.5

#: Most CPU threads that render faces side by side: a chunk holds a few dozen frames at most,
#: and the face work per frame is small, so more threads mostly wait on each other.
MAX_RENDER_THREADS = 8

#: Which renderer an edit uses: ``auto`` = the actor's neural renderer when one is trained,
#: else the geometric warp (``geometric``); ``neural`` trains one on the shot when missing.
RENDERER = "auto"
RENDERERS = ("auto", "geometric", "neural")

#: Training budget (minutes) of a renderer an edit trains on its own shot (``--renderer neural``).
RENDERER_MINUTES = 5.0

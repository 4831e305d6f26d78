"""The pipeline's contracts and machinery, independent of any particular stage.

- :mod:`facepipe.pipeline.stage` -- the kinds of node (analysis, chunked, source, frame, sink).
- :mod:`facepipe.pipeline.graph` -- ``Graph``: pulls artifacts through the cache and frames as streams.
- :mod:`facepipe.pipeline.chunks` -- runs a chunked stage resumably, chunk by chunk.
- :mod:`facepipe.pipeline.context` -- ``RunContext``: source, cache, device, worker threads, progress.
- :mod:`facepipe.pipeline.hashing` -- cache keys and source-clip keys.
- :mod:`facepipe.pipeline.cache` -- the content-addressed artifact cache (atomic entries).
- :mod:`facepipe.pipeline.artifacts` -- artifact dataclasses and their (de)serialisation.
- :mod:`facepipe.pipeline.synthesis` -- write-behind encoding.
- :mod:`facepipe.pipeline.progress`, :mod:`facepipe.pipeline.device` -- progress lines, device choice.

Nothing here imports a stage (``facepipe.stages``), a job, the API or the CLI.
"""

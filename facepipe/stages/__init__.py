"""The nodes of the stage graph, one module each (see :mod:`facepipe.stages.graph` for how they
connect): decode, deblur, scan, track, fit3d, expression, plan, render (with appearance),
composite, smooth, compare, encode. A stage uses the pipeline's contracts and the tools in
``face``, ``render``, ``composite``, ``tracking``, ``analysis``, ``plan``, ``io`` and ``nn``."""

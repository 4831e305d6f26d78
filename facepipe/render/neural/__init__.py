"""The person-specific neural renderer (issue 15): conditioning maps of the fitted mesh
(:mod:`~facepipe.render.neural.conditioning`), the shot's training samples
(:mod:`~facepipe.render.neural.samples`), the GAN recipe (:mod:`~facepipe.render.neural.train`),
per-actor checkpoints (:mod:`~facepipe.render.neural.checkpoint`), the edit-time refinement
(:mod:`~facepipe.render.neural.refine`) and the mixed precision of both
(:mod:`~facepipe.render.neural.precision`). The network itself is :mod:`facepipe.nn.face_renderer`."""

"""The Dask worker plugin of a facepipe batch: each worker process sets its threads and loads
facepipe's models once, when it starts (or restarts after a crash), not once per task.

The face model is cached per process (:func:`facepipe.face.model.load_model`); tracking runs
only in a shot's prepare task, so chunk tasks create no tracking backend at all (their
``ran`` lists show it: track and fit3d come from the work directory's cache).
"""

from __future__ import annotations

import os

from distributed import WorkerPlugin


class FacepipeWorker(WorkerPlugin):
    """``threads``: torch intra-op threads per worker (None: torch's default)."""

    name = "facepipe"

    def __init__(self, threads: int | None = None):
        self.threads = threads

    def setup(self, worker) -> None:
        os.environ.setdefault("GLOG_minloglevel", "2")  # mediapipe/absl noise, before it is imported
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import torch

        from facepipe.face.model import load_model

        if self.threads:
            torch.set_num_threads(self.threads)
        load_model()

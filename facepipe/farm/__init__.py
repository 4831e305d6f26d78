"""Many shots on many machines: the Dask engine behind ``facepipe farm edit``.

- :mod:`facepipe.farm.shots` -- the shots of a batch (arguments, CSV/JSON lists, OTIO/EDL timelines).
- :mod:`facepipe.farm.engine` -- ``run_farm``: per shot, prepare, then the chunks of its edit in
  parallel (an image sequence per shot), then assemble; on a Dask scheduler or a LocalCluster.
- :mod:`facepipe.farm.tasks` -- what one task runs on a worker (through :mod:`facepipe.api`).
- :mod:`facepipe.farm.worker` -- the worker plugin that loads facepipe's models once per worker.

An assembling layer like :mod:`facepipe.jobs`: it uses the API; only the CLI imports it. Dask
(``pip install 'facepipe[farm]'``) is imported only when a batch runs.
"""

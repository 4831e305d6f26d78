"""The parametric face model and its fit.

- :mod:`~facepipe.face.topology`: the 468-vertex FaceMesh topology (triangles, vertex groups).
- :mod:`~facepipe.face.camera`: head pose and the weak-perspective camera.
- :mod:`~facepipe.face.model`: template + identity + FACS AU blendshapes (the shipped rig).
- :mod:`~facepipe.face.rig`: how each AU blendshape is authored from anatomy (see AUS.md).
- :mod:`~facepipe.face.build_rig`: builds and calibrates the shipped rig from footage.
- :mod:`~facepipe.face.fit`: fits identity, pose and AU curves to a shot's landmarks.
- :mod:`~facepipe.face.export`: AU curves (CSV, JSON) and meshes (OBJ).
"""

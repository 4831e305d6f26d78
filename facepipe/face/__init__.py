"""The face: its parametric model and fit, and what the rest of facepipe knows about faces.

- :mod:`~facepipe.face.topology`: the 468-vertex FaceMesh topology (triangles, vertex groups, loops).
- :mod:`~facepipe.face.facs`: FACS action units as the rig names them; the AUs that carry speech.
- :mod:`~facepipe.face.extent`: where a face lies in an image (its box, its size, point in outline).
- :mod:`~facepipe.face.regions`: the facial regions appearance transfer copies from donor frames.
- :mod:`~facepipe.face.camera`: head pose and the weak-perspective camera.
- :mod:`~facepipe.face.model`: template + identity + FACS AU blendshapes (the shipped rig).
- :mod:`~facepipe.face.rig`: how each AU blendshape is authored from anatomy (see AUS.md).
- :mod:`~facepipe.face.build_rig`: builds and calibrates the shipped rig from footage.
- :mod:`~facepipe.face.fit`: fits identity, pose and AU curves to a shot's landmarks.
- :mod:`~facepipe.face.shot`: the fit of a tracked shot (the ``FaceFit`` artifact).
- :mod:`~facepipe.face.export`: AU curves (CSV, JSON) and meshes (OBJ).
"""

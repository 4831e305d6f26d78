"""facepipe: change an actor's facial expression in a finished shot.

The command line imports only light modules at start and :mod:`facepipe.api` (torch, av, cv2)
inside its commands, so that ``facepipe --help`` starts instantly; mediapipe loads when a
tracking backend needs it.
"""

__version__ = "0.1.0"

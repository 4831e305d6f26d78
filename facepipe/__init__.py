"""facepipe: change an actor's facial expression in a finished shot.

Heavy libraries (torch, av, mediapipe) are imported lazily by the modules that need them so
that ``facepipe --help`` starts instantly.
"""

__version__ = "0.1.0"

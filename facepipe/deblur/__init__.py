"""Face deblurring: synthetic exposures, the classical baseline and the deblur GAN's training.

- :mod:`facepipe.deblur.exposure`: motion blur made from consecutive sharp frames (averaged in
  linear light), with the sharp frame of every moment inside the exposure as its truth;
- :mod:`facepipe.deblur.classical`: Richardson-Lucy deconvolution with a motion kernel drawn from
  the tracked face's motion over the exposure (issue 16's baseline for the continuous-motion GAN);
- :mod:`facepipe.deblur.config`, :mod:`facepipe.deblur.train`, :mod:`facepipe.deblur.checkpoint`:
  the GAN's settings, its training recipe on windows of sharp face crops, and its weights file
  (the networks are in :mod:`facepipe.nn`; the windows are cut by :mod:`facepipe.jobs.train_deblur`).
"""

"""Face deblurring: synthetic exposures for training and measuring, and the classical baseline.

- :mod:`facepipe.deblur.exposure`: motion blur made from consecutive sharp frames (averaged in
  linear light), with the sharp frame of every moment inside the exposure as its truth;
- :mod:`facepipe.deblur.classical`: Wiener deconvolution with a motion kernel drawn from the
  tracked face's path over the exposure (issue 16's baseline for the continuous-motion GAN).
"""

"""``upsample``: RGB-guided hyperspectral super-resolution (hsigene.txt §3.3.3, RGAN) and
the super-resolution-based augmentation of whole scenes (``upsample run``).

Modules: ``attention`` (rectangle self-/cross-attention), ``rgan`` (the network),
``degrade`` (blur + bicubic downsampling for training pairs), ``train`` (train-rgan),
``tiling`` (seamless bounded-memory tiles), ``run`` (LR hsi-dataset → HR hsi-dataset),
``metrics`` (MPSNR, SAM, nearest-spectrum angle).
"""

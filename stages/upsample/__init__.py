"""``upsample``: the two-stage hyperspectral super-resolution of Pang et al., HSIGene, arXiv:2409.12470 §3.3 — DSRNet
(§3.3.2, diffusion RGB super-resolution) and RGAN (§3.3.3, RGB-guided HSI super-resolution) —
and the super-resolution-based augmentation of whole scenes (``upsample run``).

Modules: ``attention`` (rectangle self-/cross-attention), ``rgan`` (the network),
``degrade`` (blur + bicubic downsampling for training pairs), ``train_rgan`` (train-rgan),
``dsr`` (DSRNet: model, loading, position-keyed sampling of one window), ``train_dsr``
(train-dsr), ``dsr_guide`` (DSRNet on a scene's window grid; the ``dsr`` guide of run),
``tiling`` (seamless bounded-memory tiles), ``stage`` (upsample run: LR hsi-dataset → HR hsi-dataset),
``metrics`` (MPSNR, SAM, nearest-spectrum angle).
"""

"""hsigen's stages, importable without the CLI.

Each CLI command has one entry function that writes one versioned artifact directory and
returns its ``Artifact`` (``stages.artifacts``), or None where ``--dry-run`` only reports:

- a package's main command lives in ``<package>/stage.py`` as ``run(...)`` (``ingest``,
  ``unmix``, ``autoencoder`` = train-ae, ``conditions`` = condition, ``sampling`` = sample,
  ``upsample`` = upsample run); ``diffusion/stage.py``'s entry is ``train(...)`` (train-diffusion);
- further commands of a package are modules named after them (``upsample/train_rgan.py``,
  ``upsample/train_dsr.py``, ``autoencoder/codec.py`` for encode/decode,
  ``unmix/scene_training.py: infer``);
- ``evaluate``'s entry (``evaluate/report.py: run``) returns ``(Artifact, report dict)``.
"""

__version__ = "0.1.0"

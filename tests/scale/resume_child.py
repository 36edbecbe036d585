"""Child process of test_resume: trains a small conv net on a streamed two-source corpus and
appends "micro_step sha256(batch)" per step to a log, so the parent can kill it mid-epoch and
compare the batches of the resumed run with an uninterrupted one.

    python resume_child.py LOG OUT STEPS DELAY_S [--resume] -- DATASET...
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> None:
    import torch

    from stages.data import BatchPlan, open_corpus
    from stages.data.stream import StepBatches, loader
    from stages.training import Trainer, TrainSpec, save_weights

    split = argv.index("--")
    log_path, out, steps, delay = Path(argv[0]), Path(argv[1]), int(argv[2]), float(argv[3])
    resume = "--resume" in argv[:split]
    corpus = open_corpus(argv[split + 1 :])
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(corpus.bands, 4, 3, padding=1), torch.nn.Conv2d(4, corpus.bands, 1))
    spec = TrainSpec(steps=steps, lr=1e-2, seed=3, checkpoint_every=2, grad_clip=None)
    trainer = Trainer(model, spec, out, torch.device("cpu"), {"test": "resume"}, resume=resume)
    plan = BatchPlan([s.train_rows for s in corpus.sources], corpus.weights(), spec.seed, 4, corpus.size, 8)

    def batches(first):
        return loader(StepBatches(corpus, plan, 0, first, steps), "cpu", workers=2, prefetch=2)

    def loss_fn(wrapped, step, generator, batch):
        digest = hashlib.sha256(batch["hsi"].numpy().tobytes()).hexdigest()[:16]
        with log_path.open("a") as f:
            f.write(f"{batch['micro_step']} {digest}\n")
        time.sleep(delay)
        return ((wrapped(batch["hsi"]) - batch["hsi"]) ** 2).mean(), {}

    trainer.fit(loss_fn, batches=batches)
    save_weights(trainer.model.state_dict(), out.with_suffix(".safetensors"))


if __name__ == "__main__":
    main(sys.argv[1:])

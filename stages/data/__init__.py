"""Training data at scale: corpora of several hsi-datasets, the per-step batch plan (a pure
function of seed and step, so ``--resume`` is exact and DDP ranks read disjoint slices), the
streaming patch reader behind a torch ``DataLoader``, and on-disk latent / condition caches."""

from .corpus import Corpus, Source, labelled_corpus_or_dataset, open_corpus
from .plan import BatchPlan, rank_positions

__all__ = ["BatchPlan", "Corpus", "Source", "labelled_corpus_or_dataset", "open_corpus", "rank_positions"]

"""``omnivec.sparse_encoder.callbacks``: the warm-up of SpladeLoss's regularizer weights, where
sentence-transformers code imports it from (``sentence_transformers.sparse_encoder.callbacks``)."""

from omnivec.train.splade_scheduler import SchedulerType, SpladeRegularizerWeightSchedulerCallback

__all__ = ["SchedulerType", "SpladeRegularizerWeightSchedulerCallback"]

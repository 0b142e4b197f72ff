"""SparseEncoder losses: ``SpladeLoss`` (a ranking loss plus FLOPS regularizers) around one of the sparse ranking
losses, and ``CSRLoss`` (autoencoder reconstruction plus a ranking loss) for CSR models. Each is called as
``loss(model, inputs, labels)``, as omnivec's embedding losses are."""

from omnivec.train.sparse_losses.cached_splade import CachedSpladeLoss
from omnivec.train.sparse_losses.csr import CSRLoss, CSRReconstructionLoss
from omnivec.train.sparse_losses.distill_kl_div import SparseDistillKLDivLoss
from omnivec.train.sparse_losses.ranking import (
    SparseAnglELoss,
    SparseCoSENTLoss,
    SparseCosineSimilarityLoss,
    SparseLoss,
    SparseMarginMSELoss,
    SparseMSELoss,
    SparseMultipleNegativesRankingLoss,
    SparseTripletLoss,
)
from omnivec.train.sparse_losses.splade import FlopsLoss, SpladeLoss

__all__ = [
    "CachedSpladeLoss", "CSRLoss", "CSRReconstructionLoss", "FlopsLoss", "SparseAnglELoss", "SparseCoSENTLoss",
    "SparseCosineSimilarityLoss", "SparseLoss", "SparseDistillKLDivLoss", "SparseMSELoss", "SparseMarginMSELoss",
    "SparseMultipleNegativesRankingLoss", "SparseTripletLoss", "SpladeLoss",
]

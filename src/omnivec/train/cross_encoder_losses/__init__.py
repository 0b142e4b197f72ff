"""CrossEncoder losses. Each is called as ``loss(model, inputs, labels)`` with the columns' raw values and scores
pairs through ``model.logits``."""

from omnivec.train.cross_encoder_losses.base import PairLoss
from omnivec.train.cross_encoder_losses.listwise import (
    LambdaLoss,
    LambdaRankScheme,
    ListNetLoss,
    NDCGLoss2PPScheme,
    NDCGLoss2Scheme,
    NoWeightingScheme,
)
from omnivec.train.cross_encoder_losses.pointwise import BinaryCrossEntropyLoss, CrossEntropyLoss
from omnivec.train.cross_encoder_losses.ranking import MarginMSELoss, MultipleNegativesRankingLoss

__all__ = [
    "BinaryCrossEntropyLoss", "CrossEntropyLoss", "LambdaLoss", "LambdaRankScheme", "ListNetLoss", "MarginMSELoss",
    "MultipleNegativesRankingLoss", "NDCGLoss2PPScheme", "NDCGLoss2Scheme", "NoWeightingScheme", "PairLoss",
]

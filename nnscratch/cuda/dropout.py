"""Dropout masks on the GPU (and cudasim): the ``dropout_mask`` kernel of ``kernels/activation.cu``,
under the family name the other tiers use (``nnscratch.ref.dropout``, ``nnscratch.cpu.dropout``)."""

from nnscratch.cuda.activation import dropout_mask

__all__ = ["dropout_mask"]

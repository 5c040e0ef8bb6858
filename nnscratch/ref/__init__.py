"""Tier "reference": the hot ops of nnscratch in plain, vectorised NumPy, written to be read.

One module per kernel family (``conv``, ``pool``, ``norm``, ``loss``, ``activation``, ``dropout``,
``optim``, ``elementwise``, ``winograd``). Each function has a twin with the same name and arguments in
the Numba tier (:mod:`nnscratch.cpu`) and in the CUDA tier (:mod:`nnscratch.cuda`, ``kernels/*.cu``);
the names, arguments and argument checks are declared once, by the family's contract in
:mod:`nnscratch.contracts`, and :func:`nnscratch.registry.resolve` picks the tier of each call.
``nnscratch.registry.all_kernels("reference")`` gathers every family's functions in one namespace.

Start with :mod:`nnscratch.ref.conv` (im2col, step by step).
"""

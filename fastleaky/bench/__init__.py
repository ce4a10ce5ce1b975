"""The comparison report: what is measured (``impls``), how (``runner``) and
how it is shown (``report``, ``figures``); ``command`` is the CLI side.

Importing this package imports nothing heavy: peers (torch, numexpr, CuPy)
and matplotlib load when a case or a plot needs them.
"""

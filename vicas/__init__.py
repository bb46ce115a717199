"""vicas: the label contract shared by training and serving.

Light on purpose: no torch, no web framework. Training and serving both import
the taxonomy, the policy and the text normalisation from here, so they can
never disagree about labels or preprocessing.
"""

__version__ = "0.1.0"

"""Transfer learning on cached features, in NumPy.

The course's advice for a small data set: take a network (ideally with pretrained weights),
freeze it up to some layer, and train only what follows, with a new softmax layer for your k
classes. Since the frozen part never changes, run it once over the data set, keep its outputs
on disk, and train on those: every epoch then costs only the head.

One module per job:
- splitting.py: `split(net, through, classes)`, the frozen part (`through` and every layer it
  reads) and the trainable head after it, a chain of fc / activation / dropout / flatten
  layers ending in the classifier fc (made k wide) and an optional softmax; the whole
  network's weights (`network_weights`).
- features.py: `extract(...)`, the executor runs the frozen part once over the images, batch
  by batch, into a memory-mapped float32 .npy (a progress bar for long runs); a cache whose
  key (spec, weights, images) matches is reused without running anything.
- head.py: the head's kinds in one table, forward and backward; `train_head(...)`, mini-batch
  gradient descent on softmax cross-entropy plus weight decay. The classifier starts from a
  fresh seeded initialisation; earlier head layers start from the given weights.
- data.py: the digits demo's images and the train/test split.
- budget.py: the feature cache's bytes and the working memory, from sizes, refused past the
  memory limit (or the cache's disk) before any file is made.
- finetuning.py: `finetune(...)`, the whole run, the full network's weights saved as an .npz
  keyed 'LAYER/KEY' (the executor's format), the costs from the analysis; `report`.
"""
from .budget import Budget, budget_for
from .data import digits, train_test_split
from .features import Features, Progress, cache_key, extract
from .finetuning import Finetune, finetune, report, softmax_if_needed
from .head import (HEAD, HEAD_KINDS, HeadLayer, Training, cross_entropy, head_backward,
                   head_forward, head_layers, objective, predict, softmax, train_head)
from .splitting import Split, bindings, frozen_network, network_weights, split

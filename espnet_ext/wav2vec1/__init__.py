"""wav2vec 1.0 (Schneider et al., 2019): causal convolutional encoder and context network,
contrastive prediction of K future encoder frames against distractors (fairseq semantics).

Modules: :mod:`~espnet_ext.wav2vec1.config` (options, presets; no torch),
:mod:`~espnet_ext.wav2vec1.model` (the network), :mod:`~espnet_ext.wav2vec1.loss` (the objective,
pure functions), :mod:`~espnet_ext.wav2vec1.pretraining` (network + prediction head + objective),
:mod:`~espnet_ext.wav2vec1.checkpoint` (this project's and fairseq's checkpoints). ESPnet glue:
:mod:`espnet_ext.espnet.wav2vec1` (``model: wav2vec1`` for pre-training, ``frontend: wav2vec1``).

Quick use::

    from espnet_ext.wav2vec1.pretraining import wav2vec1_pretraining
    model = wav2vec1_pretraining("tiny")
    out = model(waveforms, lengths)          # out.loss.per_prediction, out.stats.accuracy

Importing this package does not import torch.
"""

"""ESPnet tasks as this project runs them.

Subclasses of ESPnet's tasks defined here, in a module of ``espnet_ext``, so that a process
spawned for DDP (which re-imports the task class by its module path) imports ``espnet_ext``
and therefore the registry before it builds a model. They also use the project's
:class:`~espnet_ext.espnet.trainer.Trainer` (``--keep_last_epochs``, ``--save_every_updates``); the
speech tasks take ``--cpu_kernels`` (:mod:`espnet_ext.espnet.kernel_option`: the wav2vec 2.0 CPU kernels, on by
default when training on CPU). Every task takes ``--num_procs`` (DDP over CPU processes) and defaults to
``unused_parameters: true`` (:mod:`espnet_ext.espnet.distributed`).
"""

from __future__ import annotations

from espnet2.tasks.asr import ASRTask as _ESPnetASRTask
from espnet2.tasks.cls import CLSTask as _ESPnetCLSTask
from espnet2.tasks.lm import LMTask as _ESPnetLMTask
from espnet2.tasks.ssl import SSLTask as _ESPnetSSLTask
from espnet2.utils.types import str2bool
from torch import nn

import espnet_ext  # noqa: F401  (registry)
from espnet_ext.espnet.distributed import DistributedMixin
from espnet_ext.espnet.frontend import NormalizeMismatchError
from espnet_ext.espnet.kernel_option import CPUKernelsMixin
from espnet_ext.espnet.portable import record_portable_conf
from espnet_ext.espnet.samplers import FairseqBatchesMixin
from espnet_ext.espnet.ssl_model import Wav2Vec2TaskMixin
from espnet_ext.espnet.trainer import Trainer


def _no_feats(**batch):
    return {}


class FeatsStatsMixin:
    """``--collect_feats_stats false``: with ``--collect_stats true``, write the shape files only,
    without running the frontend over the data (a wav2vec 2.0 frontend makes that pass as costly
    as an epoch of inference, for feature statistics that ``normalize: null`` never reads)."""

    @classmethod
    def add_task_arguments(cls, parser) -> None:
        super().add_task_arguments(parser)
        parser.add_argument_group("espnet_ext").add_argument(
            "--collect_feats_stats",
            type=str2bool,
            default=True,
            help="with --collect_stats: also compute feature statistics (for global_mvn) by running "
            "the frontend; false: shapes only",
        )

    @classmethod
    def build_model(cls, args):
        model = super().build_model(args)
        if getattr(args, "collect_stats", False) and not getattr(args, "collect_feats_stats", True):
            model.collect_feats = _no_feats
        return model


class PortableConfMixin:
    """Records in the arguments, hence in ``config.yaml``, what builds the parts of the model that
    come from a checkpoint without it (:mod:`espnet_ext.espnet.portable`; packing uses it)."""

    @classmethod
    def build_model(cls, args):
        model = super().build_model(args)
        record_portable_conf(args, model)
        return model


CTC_INITS = ("pytorch", "xavier_uniform")


def init_ctc_output(model: nn.Module, how: str) -> None:
    """Initialise the CTC output layer (``model.ctc.ctc_lo``, the Linear to the vocabulary).

    ``xavier_uniform``: fairseq's fine-tuning head (``wav2vec2_asr.Linear``: weights
    ``U(-a, a)``, ``a = sqrt(6 / (fan_in + fan_out))``, bias 0); ``pytorch``: left as built
    (``nn.Linear``'s default, or whatever ESPnet's ``--init`` made of it).
    """
    if how not in CTC_INITS:
        raise ValueError(f"ctc_init: expected one of {', '.join(CTC_INITS)}; found {how!r}")
    ctc = getattr(model, "ctc", None)
    if how == "pytorch" or ctc is None:
        return
    nn.init.xavier_uniform_(ctc.ctc_lo.weight)
    if ctc.ctc_lo.bias is not None:
        nn.init.zeros_(ctc.ctc_lo.bias)


class ASRTask(
    DistributedMixin, CPUKernelsMixin, PortableConfMixin, FairseqBatchesMixin, FeatsStatsMixin, _ESPnetASRTask
):
    """ESPnet's ASRTask with the project's plugins registered and trainer (and :class:`FeatsStatsMixin`,
    :class:`PortableConfMixin`, ``--cpu_kernels``),
    ``--ctc_init`` (:func:`init_ctc_output`, applied after ESPnet's ``--init``) and ``--fairseq_batches``
    (:mod:`espnet_ext.espnet.samplers`)."""

    trainer = Trainer

    @classmethod
    def add_task_arguments(cls, parser) -> None:
        super().add_task_arguments(parser)
        parser.add_argument_group("espnet_ext").add_argument(
            "--ctc_init",
            choices=CTC_INITS,
            default="pytorch",
            help="initialisation of the CTC output layer: xavier_uniform with bias 0 (fairseq's "
            "wav2vec 2.0 fine-tuning head) or pytorch (nn.Linear's default)",
        )

    @classmethod
    def build_model(cls, args):
        try:
            model = super().build_model(args)
        except NormalizeMismatchError as e:  # name the fine-tuning config too
            config = getattr(args, "config", None)
            raise NormalizeMismatchError(f"{config}: {e}" if config else str(e)) from None
        init_ctc_output(model, getattr(args, "ctc_init", "pytorch"))
        return model


class CLSTask(DistributedMixin, CPUKernelsMixin, PortableConfMixin, FeatsStatsMixin, _ESPnetCLSTask):
    """ESPnet's CLSTask with the project's plugins registered and trainer (and :class:`FeatsStatsMixin`,
    :class:`PortableConfMixin`, ``--cpu_kernels``)."""

    trainer = Trainer


class SSLTask(DistributedMixin, CPUKernelsMixin, FairseqBatchesMixin, Wav2Vec2TaskMixin, _ESPnetSSLTask):
    """ESPnet's SSLTask with the project's plugins, trainer, ``model: wav2vec2``, ``--fairseq_batches``
    and ``--cpu_kernels``."""

    trainer = Trainer


class LMTask(DistributedMixin, _ESPnetLMTask):
    """ESPnet's LMTask (``lm: transformer`` or ``seq_rnn`` on the ASR token list: asr.sh stages 6-7)
    with the project's trainer. The model is ESPnet's own, so ESPnet's ``lm_calc_perplexity`` and
    ``asr_inference --lm_file`` load it from its ``config.yaml`` as they load any ESPnet LM."""

    trainer = Trainer

"""``--cpu_kernels {auto,true,false}``: whether the ESPnet tasks run the wav2vec 2.0 CPU kernels.

The kernels (:mod:`espnet_ext.wav2vec2.cpu_kernels`: the conv feature extractor as channels-last
GEMMs, the project's dropout mask, attention with that dropout) compute the plain modules' functions
faster on CPU; the extractor's numbers are equal up to float32 summation order, dropout draws
other random numbers from the same distribution. Importing the model registers none of them; this
option does, per process:

* training and ``--collect_stats`` (:class:`CPUKernelsMixin`, in every task of
  :mod:`espnet_ext.espnet.tasks`): ``auto`` (the default) is on with ``--ngpu 0`` and off on GPUs,
  where the kernels would not apply anyway (they compute CPU tensors only); ``true`` and
  ``false`` force it. A training config sets it as ``cpu_kernels: false``; ``config.yaml`` records it.
* decoding (``espnet_ext.bin.asr_inference``, ``espnet_ext.bin.cls_inference``,
  :func:`apply_for_decoding`): the trained model's ``config.yaml`` value, ``auto`` on with
  ``--ngpu 0``. In eval mode only the extractor kernel applies (dropout is off): decoding gets
  its speed, with the same numbers up to float32 summation order.
"""

from __future__ import annotations

import argparse
import logging

from espnet_ext.wav2vec2 import cpu_kernels
from espnet_ext.wav2vec2.modules import KERNELS

CHOICES = ("auto", "true", "false")
HELP = (
    "run the wav2vec 2.0 CPU kernels (espnet_ext.wav2vec2.cpu_kernels: the conv feature extractor as "
    "GEMMs, a faster dropout mask, attention with it; same functions, other dropout draws of the same "
    "distribution) in this process: auto = on when --ngpu is 0 (training on CPU), off on GPUs; "
    "true / false: always / never. Decoding follows the value in the model's config.yaml"
)


def cpu_kernels_choice(value) -> str:
    """The option's value as one of :data:`CHOICES` (a YAML config gives ``true`` / ``false`` as bools)."""
    text = str(value).lower()
    if text not in CHOICES:
        raise ValueError(f"cpu_kernels: expected one of {', '.join(CHOICES)}; found {value!r}")
    return text


def wants_cpu_kernels(value, ngpu: int) -> bool:
    """Whether ``--cpu_kernels value`` runs the kernels in a process with ``ngpu`` GPUs."""
    choice = cpu_kernels_choice(value)
    return choice == "true" or (choice == "auto" and not ngpu)


def apply_cpu_kernels(value, ngpu: int) -> bool:
    """Register (or unregister) every CPU kernel as ``--cpu_kernels value`` says for ``ngpu`` GPUs;
    returns whether they are on."""
    on = wants_cpu_kernels(value, ngpu)
    (cpu_kernels.enable if on else cpu_kernels.disable)()
    return on


def kernels_state() -> str:
    """The registered kernels, for the log: ``"on (conv_feature_extractor, ...)"`` or ``"off"``."""
    return f"on ({', '.join(sorted(KERNELS))})" if KERNELS else "off"


def apply_for_decoding(argv, train_config_option: str) -> bool:
    """:func:`apply_cpu_kernels` for an inference command line ``argv``: the ``cpu_kernels`` value
    of the config given with ``--<train_config_option>`` (``auto`` when it does not say, or none is
    given) and ``--ngpu`` (0 when not given); returns whether the kernels are on."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument(f"--{train_config_option}")
    parser.add_argument("--ngpu", type=int, default=0)
    known, _ = parser.parse_known_args(list(argv))
    train_config, value = getattr(known, train_config_option), "auto"
    if train_config:
        import yaml

        with open(train_config, encoding="utf-8") as f:
            conf = yaml.safe_load(f) or {}
        try:
            value = cpu_kernels_choice(conf.get("cpu_kernels", "auto"))
        except ValueError as e:
            raise ValueError(f"{train_config}: {e}") from None
    return apply_cpu_kernels(value, known.ngpu)


class CPUKernelsMixin:
    """A task with ``--cpu_kernels``: applied at the start of each worker process (training, stats
    collection; a DDP worker with its own ``--ngpu``), logged when the model is built."""

    @classmethod
    def add_task_arguments(cls, parser) -> None:
        super().add_task_arguments(parser)
        parser.add_argument_group("espnet_ext").add_argument(
            "--cpu_kernels", type=cpu_kernels_choice, choices=CHOICES, default="auto", help=HELP
        )

    @classmethod
    def main_worker(cls, args) -> None:
        apply_cpu_kernels(getattr(args, "cpu_kernels", "auto"), getattr(args, "ngpu", 0))
        super().main_worker(args)

    @classmethod
    def build_model(cls, args):
        model = super().build_model(args)
        logging.info("CPU kernels (--cpu_kernels, espnet_ext.wav2vec2.cpu_kernels): %s", kernels_state())
        return model

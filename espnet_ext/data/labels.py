"""Class labels of a classification data dir: label files, the label list, and their checks.

A label file is a Kaldi ``text`` whose transcript is one class label (``<uttid> <label>``). The
label list (``data/token_list/labels.txt``, stage 4 of ``egs2/TEMPLATE/cls1/cls.sh``) holds one
class a line, then ``<unk>``: ESPnet's ``CLSTask`` counts ``len(token_list) - 1`` classes and needs
``<unk>`` in the list. The classes are those given, in that order, or else the training labels,
sorted.

Every line of a label file must hold exactly one label, and one of the classes: anything else is
an error naming the file, the utterance and the label (ESPnet would map an unknown label to
``<unk>``, outside the classifier's outputs). Classes without a training example are logged as a
warning.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from espnet_ext.core.atomic import write_text
from espnet_ext.data.kaldi_files import read_map

UNK = "<unk>"
logger = logging.getLogger(__name__)


def read_labels(path: Path) -> dict[str, str]:
    """``uttid -> label`` of a label file.

    Raises:
        ValueError: a line without exactly one label (naming the file and utterance).
    """
    labels = read_map(path, allow_empty_value=True)
    for uttid, label in labels.items():
        if len(label.split()) != 1:
            raise ValueError(f"{path}: utterance {uttid} has label {label!r}; expected exactly one class label")
    return labels


def read_label_list(path: Path) -> list[str]:
    """The classes of a label list written by :func:`write_label_list` (``<unk>`` dropped)."""
    classes = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    if not classes or classes[-1] != UNK:
        raise ValueError(f"{path}: expected one class a line and {UNK} last (stage 4 of cls.sh)")
    return classes[:-1]


def choose_classes(train: dict[str, str], classes: Sequence[str] | None) -> list[str]:
    """``classes`` if given (checked: unique, no ``<unk>``), else the sorted training labels."""
    if classes:
        dup = [c for c, n in Counter(classes).items() if n > 1]
        if dup or UNK in classes:
            raise ValueError(f"--classes {' '.join(classes)}: expected distinct class names other than {UNK}")
        return list(classes)
    return sorted(set(train.values()))


def check_labels(path: Path, labels: dict[str, str], classes: Sequence[str]) -> None:
    """Raise ValueError naming the first utterances of ``path`` whose label is not a class."""
    known = set(classes)
    bad = [(u, lab) for u, lab in labels.items() if lab not in known]
    if bad:
        shown = ", ".join(f"{u}: {lab!r}" for u, lab in bad[:5])
        raise ValueError(f"{path}: {len(bad)} label(s) not among the classes ({' '.join(classes)}): {shown}")


def write_label_list(path: Path, classes: Sequence[str]) -> None:
    """One class a line, then ``<unk>``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, "".join(f"{c}\n" for c in [*classes, UNK]))


def make_label_list(
    texts: Sequence[Path], out: Path, classes: Sequence[str] | None = None, checks: Sequence[Path] = ()
) -> list[str]:
    """Write the label list ``out`` from the training label files ``texts`` (and ``classes``, if
    given), after checking ``texts`` and ``checks`` against it; return the classes."""
    per_file = {path: read_labels(path) for path in [*texts, *checks]}
    train = {u: lab for path in texts for u, lab in per_file[path].items()}
    chosen = choose_classes(train, classes)
    for path, labels in per_file.items():
        check_labels(path, labels, chosen)
    counts = Counter(train.values())
    unseen = [c for c in chosen if not counts[c]]
    if unseen:
        logger.warning("class(es) without a training example: %s", " ".join(unseen))
    write_label_list(out, chosen)
    logger.info("%d classes in %s: %s", len(chosen), out, ", ".join(f"{c} ({counts[c]})" for c in chosen))
    return chosen

"""Token folding before scoring (e.g. TIMIT's 60/48 phones onto 39) with a map file."""

from __future__ import annotations

from collections.abc import Mapping

from espnet_ext.scoring.textio import read_lines


def read_fold_map(path) -> dict[str, str | None]:
    """A token folding map from a file of rows ``<symbol> [<symbol> ...] <target>`` (e.g.
    TIMIT's ``phones.60-48-39.map``: 60-, 48- and 39-phone set): every symbol of a row, the
    target included, folds to the row's last column; a symbol alone on its row (TIMIT's
    ``q``) is deleted (``None``). ``#`` starts a comment line. A symbol folded to two
    different targets raises ValueError naming the line."""
    mapping: dict[str, str | None] = {}
    for lineno, line in read_lines(path):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        target = fields[-1] if len(fields) > 1 else None
        for symbol in fields:
            if mapping.get(symbol, target) != target:
                raise ValueError(
                    f"{path}:{lineno}: {symbol!r} folds to {target!r} here but to {mapping[symbol]!r} before"
                )
            mapping[symbol] = target
    if not mapping:
        raise ValueError(f"{path}: expected rows '<symbol> ... <target>', found none")
    return mapping


def fold_texts(texts: Mapping[str, str], mapping: Mapping[str, str | None]) -> dict[str, str]:
    """Whitespace-separated tokens of each text folded with ``mapping`` (from
    :func:`read_fold_map`): a token mapped to None is dropped, a token the map lacks (e.g.
    ``<unk>``) is kept as it is."""
    return {
        utt: " ".join(t for t in (mapping.get(tok, tok) for tok in text.split()) if t is not None)
        for utt, text in texts.items()
    }

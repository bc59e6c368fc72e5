"""Batched CTC greedy decoding of an ESPnet ASR model (ESPnet's asr_inference has none).

Per frame the most likely token; repeats collapsed, then blanks (id 0) removed. The score
written is the sum of the chosen frames' log-probabilities. Output files follow ESPnet's
``asr_inference`` layout: ``<output_dir>/1best_recog/{text,token,token_int,score}``; the
text of a phone model is its phones separated by spaces (:func:`hypothesis_text`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import torch


def collapse(ids: torch.Tensor, length: int, blank: int = 0) -> list[int]:
    """Greedy CTC path -> labels: merge repeats, drop blanks."""
    path = torch.unique_consecutive(ids[:length])
    return [int(i) for i in path if int(i) != blank]


def hypothesis_text(tokenizer, token_type: str, tokens: Sequence[str]) -> str:
    """The ``text`` of a hypothesis: phones (``token_type`` ``phn``) separated by spaces, as
    PER scoring reads them; other token types through ``tokenizer.tokens2text``. (ESPnet's
    phoneme tokenizer joins its tokens with nothing between them.)"""
    if token_type == "phn":
        return " ".join(tokens)
    return tokenizer.tokens2text(tokens)


def greedy_batch(model, speech: torch.Tensor, lengths: torch.Tensor) -> list[tuple[list[int], float]]:
    """(labels, score) per utterance of a padded batch."""
    enc, enc_lens = model.encode(speech, lengths)
    logp = model.ctc.log_softmax(enc)  # (B, T, V)
    best, ids = logp.max(dim=-1)
    out = []
    for b in range(ids.size(0)):
        n = int(enc_lens[b])
        out.append((collapse(ids[b], n, blank=model.blank_id), float(best[b, :n].sum())))
    return out


def decode(
    data_path_and_name_and_type: Sequence[tuple[str, str, str]],
    asr_train_config: str,
    asr_model_file: str,
    output_dir: str,
    key_file: str = None,
    batch_size: int = 16,
    device: str = "cpu",
) -> int:
    """Decode every utterance of the data and write ESPnet-style 1best_recog files."""
    from espnet2.text.build_tokenizer import build_tokenizer
    from espnet2.text.token_id_converter import TokenIDConverter

    from espnet_ext.espnet.tasks import ASRTask

    model, args = ASRTask.build_model_from_file(asr_train_config, asr_model_file, device)
    model.eval()
    converter = TokenIDConverter(token_list=args.token_list)
    tokenizer = build_tokenizer(token_type=args.token_type, bpemodel=args.bpemodel)
    loader = ASRTask.build_streaming_iterator(
        data_path_and_name_and_type,
        dtype="float32",
        batch_size=batch_size,
        key_file=key_file,
        num_workers=0,
        preprocess_fn=ASRTask.build_preprocess_fn(args, False),
        collate_fn=ASRTask.build_collate_fn(args, False),
        allow_variable_data_keys=False,
        inference=True,
    )
    out = Path(output_dir) / "1best_recog"
    out.mkdir(parents=True, exist_ok=True)
    files = {name: open(out / name, "w", encoding="utf-8") for name in ("text", "token", "token_int", "score")}
    count, start, audio_s = 0, time.time(), 0.0
    try:
        with torch.no_grad():
            for keys, batch in loader:
                speech = batch["speech"].to(device)
                lengths = batch["speech_lengths"].to(device)
                audio_s += float(lengths.sum()) / 16000
                for key, (ids, score) in zip(keys, greedy_batch(model, speech, lengths)):
                    tokens = converter.ids2tokens(ids)
                    files["text"].write(f"{key} {hypothesis_text(tokenizer, args.token_type, tokens)}\n")
                    files["token"].write(f"{key} {' '.join(tokens)}\n")
                    files["token_int"].write(f"{key} {' '.join(map(str, ids))}\n")
                    files["score"].write(f"{key} {score:.4f}\n")
                    count += 1
    finally:
        for f in files.values():
            f.close()
    elapsed = time.time() - start
    logging.info("Decoded %d utterances in %.1f s (RTF %.3f at 16 kHz)", count, elapsed, elapsed / max(audio_s, 1e-9))
    return count

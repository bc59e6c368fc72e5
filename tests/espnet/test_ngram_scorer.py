"""The n-gram scorers (espnet_ext.espnet.ngram_scorer) as ESPnet's beam search uses them: scores
against an independent reading of the ARPA file, states, the token -> word map, and decoding a tiny
ASR model with ``--ngram_file`` through ESPnet's ``asr_inference`` (no ``kenlm`` installed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import espnet_ext  # noqa: F401  (registry)
from espnet_ext.espnet import ngram_scorer
from espnet_ext.espnet.ngram_scorer import NgramFullScorer, NgramPartScorer, install
from espnet_ext.lm.ngram import estimate

ROOT = Path(__file__).resolve().parents[2]
MINI = ROOT / "egs2/mini/corpus/en"
TOKENS = ["<blank>", "<unk>", "<space>", "a", "b", "c", "q", "<sos/eos>"]

pytestmark = pytest.mark.usefixtures("one_thread")


def arpa_log10p(path: Path):
    """``log10p(word, context)`` read straight from the ARPA text (independent of espnet_ext.lm):
    the listed n-gram if any, else the context's backoff weight plus the shorter context's value."""
    entries, order = {}, 0
    for line in path.read_text().splitlines():
        fields = line.split()
        if line.startswith("\\") and line.endswith("-grams:"):
            order = int(line[1:].split("-")[0])
        elif order and fields and not line.startswith("\\"):
            backoff = float(fields[order + 1]) if len(fields) > order + 1 else 0.0
            entries[tuple(fields[1 : order + 1])] = (float(fields[0]), backoff)

    def log10p(word: str, context: tuple[str, ...]) -> float:
        word = word if (word,) in entries else "<unk>"
        context = context[len(context) - order + 1 :] if len(context) >= order else context
        if context + (word,) in entries or not context:
            return entries[context + (word,)][0]
        return entries.get(context, (0.0, 0.0))[1] + log10p(word, context[1:])

    return log10p


def hypothesis_log10p(log10p, tokens, token_ids) -> float:
    """The n-gram log10 probability of ``<sos> t1 .. tn`` as ESPnet scores it: each token after
    ``<s>`` and the tokens before it (``<sos/eos>`` is ``</s>``)."""
    words = ["</s>" if tokens[i] == "<sos/eos>" else tokens[i] for i in token_ids]
    return sum(log10p(w, ("<s>", *words[:i])) for i, w in enumerate(words))


@pytest.fixture(scope="module")
def arpa(tmp_path_factory) -> Path:
    sentences = ["a b c a b", "b c <space> c a", "a a b c", "c b <space> a", "a b", "a <unk> c"]
    return estimate([s.split() for s in sentences], 3).write(tmp_path_factory.mktemp("lm") / "3gram.arpa")


def test_scores_are_log10_with_backoff_and_eos_is_end_of_sentence(arpa):
    log10p = arpa_log10p(arpa)
    scorer = NgramFullScorer(str(arpa), TOKENS)
    x = torch.zeros(5, 4, dtype=torch.float64)
    state = scorer.init_state(x)
    y = torch.tensor([7])  # <sos>
    for t in [3, 4, 2, 6, 5, 3]:  # a b <space> q(unknown) c a
        scores, state = scorer.score(y, state, x)
        assert scores.dtype == torch.float64 and scores.shape == (len(TOKENS),)
        context = ("<s>",) + tuple(("<unk>" if TOKENS[i] == "q" else TOKENS[i]) for i in y[1:].tolist())
        words = ["</s>" if w == "<sos/eos>" else w for w in TOKENS]
        expected = [log10p(w, context) for w in words]
        assert scores.tolist() == pytest.approx(expected, abs=1e-5), context
        # <blank> and q are not ARPA words: <unk>; <sos/eos> is </s>
        assert scores[0] == scores[1] == scores[6]
        assert scores[7] == pytest.approx(log10p("</s>", context), abs=1e-5)
        y = torch.cat([y, torch.tensor([t])])
    # log10, not natural log: the full distribution over the ARPA words sums to 1 in base 10
    probabilities = 10 ** scores.double()
    assert float(probabilities[1:].sum() - probabilities[6]) == pytest.approx(1.0, abs=1e-5)


def test_batch_and_partial_scores_equal_single_scores(arpa):
    full, part = NgramFullScorer(arpa, TOKENS), NgramPartScorer(arpa, TOKENS)
    x = torch.zeros(3, 4)
    ys = torch.tensor([[7, 3, 4], [7, 4, 4], [7, 2, 3]])
    states = [full.next_state(None, ()) for _ in range(3)]  # after <s>
    states = [full.next_state(int(y[1]), s) for y, s in zip(ys, states)]
    scores, new = full.batch_score(ys, states, x.expand(3, *x.shape))
    assert scores.shape == (3, len(TOKENS)) and isinstance(new, list)
    for i in range(3):
        single, state = full.score(ys[i], states[i], x)
        assert torch.equal(scores[i], single) and new[i] == state
        ids = torch.tensor([3, 7, 0])
        partial, part_state = part.score_partial(ys[i], ids, states[i], x)
        assert torch.equal(partial, single[ids]) and part_state == state
        assert part.select_state(part_state, 1) == state  # a single state is kept as is
        assert full.select_state(new, i) == new[i]  # a batch's list: the i-th
    ids = torch.tensor([[3, 4], [7, 0], [2, 5]])
    partial, part_new = part.batch_score_partial(ys, ids, states, x.expand(3, *x.shape))
    assert part_new == new
    assert torch.equal(partial.gather(1, ids), scores.gather(1, ids))
    assert int((partial != 0).sum()) == 6  # zero outside the ids asked for
    assert torch.equal(part.batch_score_partial(ys, None, states, x.expand(3, *x.shape))[0], scores)


def test_the_score_vector_is_cached_per_state(arpa):
    scorer = NgramFullScorer(arpa, TOKENS)
    x = torch.zeros(2, 2)
    first = scorer.score(torch.tensor([7, 3, 4]), scorer.next_state(None, ()), x)
    second = scorer.score(torch.tensor([7, 3, 4]), scorer.next_state(None, ()), x)
    assert torch.equal(first[0], second[0]) and first[1] == second[1]
    assert scorer.cache_hits == 1 and scorer.cache_misses == 1
    scorer.max_cached = 2
    for t in (3, 4, 5, 2):
        scorer.score(torch.tensor([7, t]), scorer.next_state(None, ()), x)
    assert len(scorer._cache) == 2


def test_install_makes_espnet_import_these_classes(monkeypatch):
    import espnet.nets.scorers as package

    monkeypatch.delitem(sys.modules, ngram_scorer.ESPNET_MODULE, raising=False)
    monkeypatch.delattr(package, "ngram", raising=False)
    install()
    from espnet.nets.scorer_interface import BatchScorerInterface, PartialScorerInterface
    from espnet.nets.scorers.ngram import NgramFullScorer as Full
    from espnet.nets.scorers.ngram import NgramPartScorer as Part

    assert Full is NgramFullScorer and Part is NgramPartScorer
    assert issubclass(Full, BatchScorerInterface) and issubclass(Part, PartialScorerInterface)
    # ESPnet's asr_inference command line always builds the "full" one: --ngram_scorer part swaps it
    install("part")
    from espnet.nets.scorers.ngram import NgramFullScorer as Full

    assert Full is NgramPartScorer and package.ngram.NgramPartScorer is NgramPartScorer
    with pytest.raises(ValueError, match="--ngram_scorer: expected one of full, part, not 'partial'"):
        install("partial")


def test_a_kenlm_binary_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "3gram.bin"
    path.write_bytes(b"mmap lm http://kheafield.com/code format version 5\n\0\xff\xfe")
    with pytest.raises(ValueError, match="3gram.bin: .*not an ARPA text file"):
        NgramFullScorer(str(path), TOKENS)


# ----------------------------------------------------------------------------- decoding


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, tiny_asr_data):
    """A tiny CTC model (random weights, the mini corpus's characters), its config and model file,
    and a character 3-gram of the mini corpus's transcripts; {name: path}."""
    from espnet2.utils.yaml_no_alias_safe_dump import yaml_no_alias_safe_dump

    from espnet_ext.espnet.tasks import ASRTask
    from espnet_ext.lm.ngram import train

    root = tmp_path_factory.mktemp("ngram_decode")
    tiny_asr_data(root / "data")
    tokens = (root / "data/tokens.txt").read_text().split()
    args = ASRTask.get_parser().parse_args(
        [
            "--output_dir",
            str(root / "exp"),
            "--token_list",
            str(root / "data/tokens.txt"),
            "--token_type",
            "char",
            "--frontend",
            "wav2vec2",
            "--frontend_conf",
            "preset=tiny",
            "--normalize",
            "none",
            "--encoder",
            "w2v2_light",
            "--model_conf",
            "ctc_weight=1.0",
        ]
    )
    args.token_list = tokens
    torch.manual_seed(0)
    model = ASRTask.build_model(args)
    (root / "exp").mkdir()
    torch.save(model.state_dict(), root / "exp/model.pth")
    with open(root / "exp/config.yaml", "w", encoding="utf-8") as f:
        yaml_no_alias_safe_dump(vars(args), f, indent=4, sort_keys=False)
    text = root / "train.tokens"
    lines = (MINI / "text").read_text().splitlines()
    words = [line.split(maxsplit=1)[1] for line in lines]
    text.write_text("".join(" ".join(w.replace(" ", "_")).replace("_", "<space>") + "\n" for w in words))
    train([text], 3, root / "3gram.arpa")
    utts = [line.split()[0] for line in lines[:2]]
    (root / "wav.scp").write_text("".join(f"{u} {MINI / 'wav' / u}.flac\n" for u in utts))
    return {
        "root": root,
        "config": root / "exp/config.yaml",
        "model": root / "exp/model.pth",
        "arpa": root / "3gram.arpa",
        "wav": MINI / "wav" / f"{utts[0]}.flac",
        "tokens": tokens,
    }


@pytest.mark.parametrize("kind", ["full", "part"])
def test_beam_search_score_is_ctc_plus_weight_times_ngram(tiny_model, monkeypatch, kind):
    """Every n-best hypothesis: its n-gram score is the ARPA's log10 probability of its tokens
    (then </s>), and its total is the CTC score plus the weight times that. A hypothesis still
    running at the maximum length (the encoder's frames) gets an end token appended that no scorer
    scores (ESPnet's ``BeamSearch.post_process``)."""
    import soundfile
    from espnet.nets.beam_search import BeamSearch
    from espnet2.bin.asr_inference import Speech2Text

    monkeypatch.delitem(sys.modules, ngram_scorer.ESPNET_MODULE, raising=False)
    install()
    audio, _ = soundfile.read(str(tiny_model["wav"]))
    log10p = arpa_log10p(tiny_model["arpa"])
    tokens = tiny_model["tokens"]
    weight = 2.0
    options = dict(ctc_weight=1.0, beam_size=3, nbest=3, device="cpu", ngram_scorer=kind)
    s2t = Speech2Text(tiny_model["config"], tiny_model["model"], ngram_file=tiny_model["arpa"], **options)
    s2t.beam_search.weights["ngram"] = weight
    results = s2t(audio)
    assert type(s2t.beam_search).__name__ == "BatchBeamSearch"
    assert len(results) == 3
    speech = torch.tensor(audio, dtype=torch.float32)[None]
    with torch.no_grad():
        maxlen = s2t.asr_model.encode(speech, torch.tensor([speech.shape[1]]))[0].shape[1]
    for _, _, token_int, hyp in results:
        ids = hyp.yseq[1:].tolist()
        assert ids[-1] == len(tokens) - 1 and ids[:-1] == token_int  # ends with <sos/eos>
        scored = ids[:-1] if len(hyp.yseq) == maxlen + 2 else ids
        expected = hypothesis_log10p(log10p, tokens, scored)
        assert float(hyp.scores["ngram"]) == pytest.approx(expected, abs=1e-3)
        assert float(hyp.score) == pytest.approx(float(hyp.scores["ctc"]) + weight * expected, abs=1e-3)
    # the non-batched beam search (score / score_partial) finds the same hypotheses and scores
    s2t.beam_search.__class__ = BeamSearch
    for (text, _, ids, hyp), (text2, _, ids2, hyp2) in zip(results, s2t(audio)):
        assert (text, ids) == (text2, ids2)
        assert float(hyp.score) == pytest.approx(float(hyp2.score), abs=1e-3)


def test_decoding_through_asr_inference(tiny_model, tmp_path, monkeypatch):
    """python -m espnet_ext.bin.asr_inference with --ngram_file: runs without kenlm, the n-gram changes
    the scores; --ngram_weight 0 writes what decoding without an n-gram writes; --ngram_scorer part
    (an option ESPnet's command line lacks) builds the partial scorer."""
    from espnet_ext.bin.asr_inference import main

    monkeypatch.delitem(sys.modules, ngram_scorer.ESPNET_MODULE, raising=False)

    def decode(name, *options):
        out = tmp_path / name
        main(
            [
                "--asr_train_config",
                str(tiny_model["config"]),
                "--asr_model_file",
                str(tiny_model["model"]),
                "--data_path_and_name_and_type",
                f"{tiny_model['root'] / 'wav.scp'},speech,sound",
                "--output_dir",
                str(out),
                "--ngpu",
                "0",
                "--beam_size",
                "3",
                "--ctc_weight",
                "1.0",
                *options,
            ]
        )
        return {f: (out / "1best_recog" / f).read_text() for f in ("token", "score", "text")}

    plain = decode("plain")
    zero = decode("zero", "--ngram_file", str(tiny_model["arpa"]), "--ngram_weight", "0")
    full = decode("full", "--ngram_file", str(tiny_model["arpa"]), "--ngram_weight", "1.0")
    lm = decode("lm", "--ngram_file", str(tiny_model["arpa"]), "--ngram_weight", "1.0", "--ngram_scorer", "part")
    assert sys.modules[ngram_scorer.ESPNET_MODULE].NgramFullScorer is NgramPartScorer
    assert zero == plain
    assert lm == full  # CTC only: no pre-beam, the partial scorer scores every token
    assert lm["score"] != plain["score"]
    scores = [dict(line.split(maxsplit=1) for line in d["score"].splitlines()) for d in (plain, lm)]
    assert scores[0].keys() == scores[1].keys() and len(scores[0]) == 2

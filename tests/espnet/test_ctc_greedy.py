import pytest
import torch

from espnet_ext.espnet.ctc_greedy import collapse, greedy_batch, hypothesis_text


def test_collapse_merges_repeats_then_drops_blanks():
    ids = torch.tensor([0, 3, 3, 0, 3, 5, 5, 0, 0, 7, 9, 9])
    assert collapse(ids, len(ids)) == [3, 3, 5, 7, 9]
    assert collapse(ids, 4) == [3]  # only the first 4 frames are valid
    assert collapse(ids, 0) == []


class FakeModel(torch.nn.Module):
    """encode() returns the input as logits; frames beyond the length are padding."""

    blank_id = 0

    def encode(self, speech, lengths):
        return speech, lengths

    class ctc:  # noqa: N801
        @staticmethod
        def log_softmax(x):
            return torch.log_softmax(x, dim=-1)


def test_greedy_batch_respects_lengths_and_scores():
    logits = torch.full((2, 4, 3), -10.0)
    path = [[1, 1, 0, 2], [2, 0, 2, 1]]
    for b, p in enumerate(path):
        for t, k in enumerate(p):
            logits[b, t, k] = 10.0
    out = greedy_batch(FakeModel(), logits, torch.tensor([4, 3]))
    assert [labels for labels, _ in out] == [[1, 2], [2, 2]]
    logp = torch.log_softmax(logits, -1).max(-1).values
    assert abs(out[1][1] - float(logp[1, :3].sum())) < 1e-5


def test_phone_hypotheses_are_space_separated():
    """ESPnet's phoneme tokenizer joins phones with nothing between; PER needs them apart."""
    from espnet2.text.build_tokenizer import build_tokenizer

    phones = ["sil", "hh", "ae", "sil"]
    assert hypothesis_text(build_tokenizer(token_type="phn"), "phn", phones) == "sil hh ae sil"
    chars = ["a", "b", "<space>", "c"]
    assert hypothesis_text(build_tokenizer(token_type="char"), "char", chars) == "ab c"


def test_beam_search_phone_text_rewritten_from_tokens(tmp_path):
    from espnet_ext.bin.asr_inference import space_phone_hypotheses

    config = tmp_path / "config.yaml"
    out = tmp_path / "output.1"
    for n in (1, 2):
        (out / f"{n}best_recog").mkdir(parents=True)
        (out / f"{n}best_recog/token").write_text("u1 sil hh ae\nu2 \n")
        (out / f"{n}best_recog/text").write_text("u1 silhhae\nu2 \n")
    config.write_text("token_type: char\n")
    assert space_phone_hypotheses(out, config) == 0
    assert (out / "1best_recog/text").read_text() == "u1 silhhae\nu2 \n"
    config.write_text("token_type: phn\n")
    assert space_phone_hypotheses(out, config) == 2
    assert (out / "2best_recog/text").read_text() == "u1 sil hh ae\nu2 \n"


@pytest.mark.parametrize("option", ["--lm_file", "--lm_train_config", "--ngram_file"])
def test_greedy_decoding_refuses_an_lm(tmp_path, option):
    """Greedy decoding scores no LM: an LM or n-gram given with it is an error naming the config,
    not a decoding without it (asr.sh stops earlier, before any stage runs)."""
    from espnet_ext.bin.asr_inference import main

    config = tmp_path / "decode_ctc_greedy.yaml"
    config.write_text("decoding: ctc_greedy\n")
    argv = ["--config", str(config), "--ngpu", "1", option, "x", "--output_dir", str(tmp_path / "out")]
    with pytest.raises(ValueError, match=f"decode_ctc_greedy.yaml: decoding: ctc_greedy takes no LM .*{option} given"):
        main(argv)

"""ESPnet encoders (``espnet2.asr.encoder.abs_encoder.AbsEncoder``) for wav2vec 2.0 fine-tuning.

``w2v2_context`` (:class:`W2V2ContextEncoder`)
    an input projection, then the downsampling context network
    (:mod:`espnet_ext.wav2vec2.downsample`): Transformer encoder -> downsampler (rate r) ->
    Transformer decoder. The CTC layer sees ``ceil(r * T)`` frames for ``T`` input frames.
    Works on top of any frontend (``default`` fbank, ``wav2vec2``, ...). With ``path``, the
    network pre-trained on top of a backbone (ssl1 with ``model_conf.context``) is loaded: its
    architecture and weights come from the checkpoint, the frontend loads the same file.

``w2v2_light`` (:class:`LightCTCEncoder`)
    what goes between a wav2vec 2.0 backbone (as frontend) and ESPnet's CTC layer. fairseq's
    fine-tuning (``Wav2VecCtc``) puts only dropout (``final_dropout``) and a Linear to the
    vocabulary on top of the backbone; ESPnet's ``CTC`` module already holds that Linear, so
    this encoder is dropout, optionally a LayerNorm and optionally a Linear to ``output_size``.
    Lengths pass through unchanged.

Both are selected by name once registered (see :mod:`espnet_ext.espnet.plugins`); their frame counts
for the stage-4 data filter live in :mod:`espnet_ext.espnet.lengths`.
"""

from __future__ import annotations

import logging
from typing import Any

from espnet2.asr.encoder.abs_encoder import AbsEncoder
from torch import Tensor, nn

from espnet_ext.wav2vec2.downsample import downsampling_context_network, make_padding_mask

#: ``W2V2ContextEncoder``'s default ``downsample_rate`` (MyOriginalWav2Vec2.0's 0.7).
DEFAULT_DOWNSAMPLE_RATE = 0.7


def pretrained_context(path: str) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """(options, weights) of the downsampling context network stored in ``path``.

    Raises:
        ValueError: ``path`` is not a checkpoint of this project, or holds no context network.
    """
    from espnet_ext.wav2vec2.importers import FORMAT, torch_load

    checkpoint = torch_load(path)
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise ValueError(
            f"w2v2_context: {path}: expected a checkpoint of this project's pre-training "
            f"(format {FORMAT!r}); only those hold a downsampling context network"
        )
    prefix = "context_network."
    state = {
        k[len(prefix) :]: v for k, v in (checkpoint.get("pretraining_state") or {}).items() if k.startswith(prefix)
    }
    if not checkpoint.get("context") or not state:
        raise ValueError(
            f"w2v2_context: {path}: no downsampling context network in this checkpoint (it was "
            "pre-trained without model_conf.context); drop encoder_conf.path to train one from scratch"
        )
    return dict(checkpoint["context"]), state


def _stored_options(
    path: str | None, context: dict[str, Any] | None, input_size: int, options: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Tensor] | None]:
    """(network options, pre-trained weights or None) of ``w2v2_context``: the checkpoint's at
    ``path``, else ``context``, else ``options`` (the encoder's own arguments)."""
    if path is not None and context is not None:
        raise ValueError(f"w2v2_context: give path or context, not both; found path={path!r} and context")
    if path is None and context is None:
        return options, None
    options, pretrained = pretrained_context(path) if path is not None else (dict(context), None)
    if input_size != options["embed_dim"]:
        raise ValueError(
            f"w2v2_context: {path or 'context'} holds a context network of width "
            f"{options['embed_dim']}; found input_size {input_size} (use the wav2vec2 frontend "
            "on the same checkpoint)"
        )
    return options, pretrained


def _check_input(xs_pad: Tensor, ilens: Tensor, input_size: int) -> None:
    if xs_pad.dim() != 3 or xs_pad.size(-1) != input_size:
        raise ValueError(f"xs_pad: expected (B, T, {input_size}), found {tuple(xs_pad.shape)}")
    if ilens.dim() != 1 or ilens.size(0) != xs_pad.size(0):
        raise ValueError(f"ilens: expected ({xs_pad.size(0)},), found {tuple(ilens.shape)}")


class W2V2ContextEncoder(AbsEncoder):
    """Input projection + downsampling context network (registered as ``w2v2_context``).

    ``(B, T, input_size)`` features -> ``(B, ceil(r * T), output_size)``; output lengths
    ``ceil(r * L)`` per utterance, exactly (:func:`espnet_ext.wav2vec2.downsample.downsampled_length`).

    Args:
        input_size: feature dimension of the frontend (ESPnet passes it).
        output_size: model dimension C (attention, residual stream, what CTC sees).
        attention_heads: heads per attention layer; must divide ``output_size``.
        linear_units: FFN hidden size (units; channels of the first conv for ``conv_ffn``).
        num_encoder_blocks: full-rate Transformer encoder layers (N_enc).
        num_decoder_blocks: Transformer decoder layers at the downsampled rate (N_dec).
        downsample_rate: r in (0, 1], output frames per input frame (1.0: no downsampling).
        conv_ffn: FFN as two 1-D convolutions over time (kernels ``conv_ffn_kernel`` and 1)
            instead of two Linear layers.
        conv_ffn_kernel: first kernel of the conv FFN (frames, odd).
        dropout_rate: dropout on the input and on every residual branch.
        attention_dropout_rate: dropout on attention weights.
        activation_dropout_rate: dropout after the FFN activation.
        normalize_before: pre-LN (True) or post-LN (False, fairseq BASE).
        pos_conv_kernel: kernel (frames) of the convolutional positional embedding; 0: none.
        pos_conv_groups: its groups; must divide ``output_size``.
        path: a checkpoint of this project's pre-training with a downsampling context network
            (``exp/ssl_<tag>/checkpoints/<N>updates.pth`` or the exported ``backbone.pth``). Its
            stored options replace every option above except the three dropouts, its weights are
            loaded (and reloaded after ESPnet's ``init``), and ``input_size`` must equal its width
            (use the ``wav2vec2`` frontend on the same file).
        context: instead of ``path``, the network's options as such a checkpoint stores them
            (what :meth:`portable_conf` gives, and a packed model's config holds), randomly
            initialized; they replace the options above in the same way.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int = 256,
        attention_heads: int = 4,
        linear_units: int = 1024,
        num_encoder_blocks: int = 6,
        num_decoder_blocks: int = 6,
        downsample_rate: float = DEFAULT_DOWNSAMPLE_RATE,
        conv_ffn: bool = False,
        conv_ffn_kernel: int = 5,
        dropout_rate: float = 0.1,
        attention_dropout_rate: float = 0.0,
        activation_dropout_rate: float = 0.0,
        normalize_before: bool = True,
        pos_conv_kernel: int = 128,
        pos_conv_groups: int = 16,
        path: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        options = dict(
            embed_dim=output_size,
            num_heads=attention_heads,
            ffn_dim=linear_units,
            num_encoder_layers=num_encoder_blocks,
            num_decoder_layers=num_decoder_blocks,
            downsample_rate=downsample_rate,
            conv_ffn=conv_ffn,
            conv_ffn_kernel=conv_ffn_kernel,
            layer_norm_first=normalize_before,
            pos_conv_kernel=pos_conv_kernel,
            pos_conv_groups=pos_conv_groups,
        )
        self.path = path
        options, self._pretrained = _stored_options(path, context, input_size, options)
        self._stored = {
            k: v for k, v in options.items() if k not in ("dropout", "attention_dropout", "activation_dropout")
        }
        options.update(
            dropout=dropout_rate, attention_dropout=attention_dropout_rate, activation_dropout=activation_dropout_rate
        )
        self._input_size = input_size
        self._output_size = options["embed_dim"]
        self.input_layer = (
            nn.Identity() if input_size == self._output_size else nn.Linear(input_size, self._output_size)
        )
        self.context = downsampling_context_network(**options)
        self.reload_pretrained_parameters()

    def reload_pretrained_parameters(self) -> None:
        """Load the checkpoint's context network again (ESPnet's ``init:`` re-initializes every module)."""
        if self._pretrained is not None:
            self.context.load_state_dict(self._pretrained)
            logging.info("w2v2_context: loaded the pre-trained context network of %s", self.path)

    def portable_conf(self) -> dict[str, Any]:
        """The options that build this encoder without ``path``: ``context``, the network's
        options (plain values; the dropouts stay the encoder's own options)."""
        return {"context": dict(self._stored)}

    def output_size(self) -> int:
        return self._output_size

    def forward(self, xs_pad: Tensor, ilens: Tensor, prev_states: Tensor | None = None) -> tuple[Tensor, Tensor, None]:
        """Encode.

        Args:
            xs_pad: (B, T, input_size) padded features.
            ilens: (B,) valid frames.
            prev_states: unused (ESPnet's interface).

        Returns:
            (B, ceil(r * T), output_size) output (zero at padding), (B,) output lengths, None.
        """
        _check_input(xs_pad, ilens, self._input_size)
        padding_mask = make_padding_mask(ilens.to(xs_pad.device), xs_pad.size(1))
        out = self.context(self.input_layer(xs_pad), padding_mask)
        return out.output, out.lengths, None


class LightCTCEncoder(AbsEncoder):
    """Optional LayerNorm -> dropout -> optional Linear (registered as ``w2v2_light``).

    For CTC directly on a wav2vec 2.0 backbone used as frontend: fairseq's fine-tuning adds only
    ``final_dropout`` and the vocabulary projection, which ESPnet's ``CTC`` module provides; with
    the defaults this encoder is that dropout alone. Lengths are unchanged.

    Args:
        input_size: backbone output dimension (ESPnet passes it).
        output_size: Linear projection to this size; None or ``input_size``: no projection.
        dropout_rate: dropout on the backbone output (fairseq ``final_dropout``).
        layer_norm: LayerNorm over the backbone output first.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int | None = None,
        dropout_rate: float = 0.0,
        layer_norm: bool = False,
    ) -> None:
        super().__init__()
        if output_size is not None and output_size < 1:
            raise ValueError(f"output_size: expected a positive integer or None, found {output_size}")
        self._input_size = input_size
        self._output_size = input_size if output_size is None else output_size
        self.norm = nn.LayerNorm(input_size) if layer_norm else nn.Identity()
        self.dropout = nn.Dropout(dropout_rate)
        if self._output_size == input_size:
            self.projection = nn.Identity()
        else:
            self.projection = nn.Linear(input_size, self._output_size)

    def output_size(self) -> int:
        return self._output_size

    def forward(self, xs_pad: Tensor, ilens: Tensor, prev_states: Tensor | None = None) -> tuple[Tensor, Tensor, None]:
        """(B, T, input_size), (B,) -> (B, T, output_size) (zero at padding), the same (B,) lengths, None."""
        _check_input(xs_pad, ilens, self._input_size)
        out = self.projection(self.dropout(self.norm(xs_pad)))
        padding_mask = make_padding_mask(ilens.to(xs_pad.device), xs_pad.size(1))
        return out.masked_fill(padding_mask[..., None], 0.0), ilens, None


__all__ = ["W2V2ContextEncoder", "LightCTCEncoder"]

"""The architecture as data: one typed `ModelConfig` for encoders, decoders and encoder-decoders, and presets.

- `ModelConfig` — every hyperparameter of the three architectures, with why each default is what it is.
- `PRESETS` — `gpt2` (124M), `bert-base`, `transformer-base` (Vaswani et al. 2017), `llama-small`, and the
  tiny CPU presets `gpt-tiny`, `bert-tiny`, `transformer-tiny` that train in minutes on 2 cores.
- `ELMoConfig` — the bidirectional LSTM LM of `elmo` (character CNN, LSTMs, adaptive softmax);
  `model_config_from_dict` reads either kind from a config.json's "model" section.
- `num_parameters()` counts parameters analytically (no model built), `flops_per_token()` gives the training
  FLOPs per token used for MFU: 6·N + 12·L·T·d (Kaplan et al. 2020 / PaLM appendix B).

    >>> config = preset("gpt2")
    >>> config.num_parameters()
    124439808
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from lmforge.errors import ConfigError

ARCHITECTURES = ("encoder", "decoder", "encoder-decoder")
POSITIONS = ("learned", "sinusoidal", "rotary")
NORMS = ("layernorm", "rmsnorm")
ACTIVATIONS = ("relu", "gelu", "gelu_tanh", "silu", "swiglu")
HEADS = (None, "lm", "mlm", "sequence-classification", "token-classification", "question-answering")


@dataclass
class ModelConfig:
    architecture: str = "decoder"  # "encoder" (BERT), "decoder" (GPT, Llama) or "encoder-decoder" (Marian)
    vocab_size: int = 8192  # small BPE vocabularies train well on CPU; GPT-2 uses 50257
    d_model: int = 384  # width of the residual stream
    n_layers: int = 6  # layers of the encoder, or of the decoder for decoder-only models
    n_decoder_layers: int | None = None  # encoder-decoder only: decoder depth (None = n_layers)
    n_heads: int = 6  # head size d_model / n_heads = 64, as in GPT-2 and BERT
    n_kv_heads: int | None = None  # grouped-query attention: key/value heads (None = n_heads, plain MHA)
    d_ff: int = 1536  # 4 × d_model, the feed-forward width of GPT-2, BERT and the original Transformer
    max_positions: int = 1024  # longest sequence (size of the learned position table; cap for the others)
    positions: str = "learned"  # "learned" (GPT-2, BERT), "sinusoidal" (Vaswani, Marian), "rotary" (Llama)
    rope_theta: float = 10000.0  # rotary base frequency, as in RoFormer and Llama 2
    norm: str = "layernorm"  # "layernorm" or "rmsnorm" (Llama: no mean, no bias, cheaper)
    norm_eps: float = 1e-5  # GPT-2 1e-5, BERT 1e-12, Llama 1e-6
    pre_norm: bool = True  # normalize before each sublayer (GPT-2, Llama; trains deep stacks without warmup
    # tricks) or after the residual add (False: the original Transformer, BERT, Marian)
    activation: str = "gelu_tanh"  # "relu" (Vaswani), "gelu" (BERT), "gelu_tanh" (GPT-2), "silu", "swiglu"
    bias: bool = True  # biases in linear layers and norms; Llama drops them all
    dropout: float = 0.0  # on embeddings, sublayer outputs and classifier inputs; 0 for short CPU runs
    attention_dropout: float = 0.0  # on the attention weights
    embedding_norm: bool = False  # BERT normalizes the summed embeddings before the first layer
    scale_embeddings: bool = False  # Vaswani/Marian multiply token embeddings by sqrt(d_model)
    type_vocab_size: int = 0  # BERT's segment (token type) embeddings: 2 for sentence pairs, 0 for none
    pooler: bool = False  # BERT's pooler: tanh(W · hidden[CLS]) for sentence-level heads
    classifier_pooling: str = "cls"  # what a sequence-classification head reads without a pooler: the
    # [CLS] vector ("cls", BERT) or the mean of the real tokens' vectors ("mean", sentence-transformers)
    head: str | None = "lm"  # None, "lm", "mlm", "sequence-classification", "token-classification",
    # "question-answering"
    num_labels: int = 2  # classes of the classification heads
    tie_embeddings: bool = True  # output projection = token embedding matrix (GPT-2, BERT, Marian);
    # saves vocab × d_model parameters. Llama unties it.
    share_encoder_decoder_embeddings: bool = True  # encoder-decoder: one token table for both sides
    final_logits_bias: bool = False  # Marian adds a fixed bias to the output logits
    pad_token_id: int | None = None
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    decoder_start_token_id: int | None = None  # encoder-decoder: the first decoder input (Marian: pad)
    preset: str | None = None  # the preset this config came from, for the model card
    extra: dict = field(default_factory=dict)  # free-form notes (e.g. where converted weights came from)

    def __post_init__(self) -> None:
        self.validate()

    # -- derived sizes -------------------------------------------------------------------------------
    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.n_heads

    @property
    def decoder_layers(self) -> int:
        return self.n_decoder_layers if self.n_decoder_layers is not None else self.n_layers

    @property
    def final_norm(self) -> bool:
        """Pre-norm stacks end with one more norm; post-norm ones already end normalized."""
        return self.pre_norm

    def pad_id(self, tokenizer=None) -> int:
        """The id batches are padded with: `pad_token_id`; without one, the tokenizer's [PAD] (when a
        tokenizer is given); else 0 (the padded positions are masked out, so any valid id serves).

        >>> ModelConfig(pad_token_id=3).pad_id(), ModelConfig().pad_id()
        (3, 0)
        """
        if self.pad_token_id is not None:
            return self.pad_token_id
        found = tokenizer.token_to_id("[PAD]") if tokenizer is not None else None
        return found if found is not None else 0

    def validate(self) -> None:
        def bad(name: str, value, valid) -> ConfigError:
            return ConfigError(f"model config: {name}={value!r} is not valid; choose one of {list(valid)}")

        if self.architecture not in ARCHITECTURES:
            raise bad("architecture", self.architecture, ARCHITECTURES)
        if self.positions not in POSITIONS:
            raise bad("positions", self.positions, POSITIONS)
        if self.norm not in NORMS:
            raise bad("norm", self.norm, NORMS)
        if self.activation not in ACTIVATIONS:
            raise bad("activation", self.activation, ACTIVATIONS)
        if self.head not in HEADS:
            raise bad("head", self.head, HEADS)
        if self.classifier_pooling not in ("cls", "mean"):
            raise bad("classifier_pooling", self.classifier_pooling, ("cls", "mean"))
        if self.d_model % self.n_heads:
            raise ConfigError(
                f"model config: d_model={self.d_model} is not divisible by n_heads={self.n_heads}"
            )
        if self.n_heads % self.kv_heads:
            raise ConfigError(
                f"model config: n_heads={self.n_heads} is not a multiple of n_kv_heads={self.kv_heads}"
            )
        if self.positions == "rotary" and self.head_dim % 2:
            raise ConfigError(f"model config: rotary positions need an even head size, got {self.head_dim}")
        if self.architecture == "decoder" and self.head not in (None, "lm"):
            raise ConfigError(f"model config: a decoder takes head 'lm' or none, got {self.head!r}")
        if self.architecture == "encoder-decoder" and self.head not in (None, "lm"):
            raise ConfigError(f"model config: an encoder-decoder takes head 'lm' or none, got {self.head!r}")
        if self.architecture == "encoder" and self.head == "lm":
            raise ConfigError("model config: an encoder predicts masked tokens: use head 'mlm', not 'lm'")

    # -- size and cost -------------------------------------------------------------------------------
    def num_parameters(self, *, include_positions: bool = True) -> int:
        """Parameters of the model this config builds, counted from the shapes (tied weights once)."""
        d, ff, V = self.d_model, self.d_ff, self.vocab_size
        bias = 1 if self.bias else 0
        norm = d * (2 if self.norm == "layernorm" and self.bias else 1)
        kv_width = self.kv_heads * self.head_dim
        self_attention = d * (d + 2 * kv_width) + bias * (d + 2 * kv_width) + d * d + bias * d
        cross_attention = self_attention
        if self.activation == "swiglu":
            feed_forward = 3 * d * ff + bias * (2 * ff + d)
        else:
            feed_forward = 2 * d * ff + bias * (ff + d)
        encoder_layer = self_attention + feed_forward + 2 * norm
        decoder_layer = encoder_layer + (
            cross_attention + norm if self.architecture == "encoder-decoder" else 0
        )
        positions = self.max_positions * d if self.positions == "learned" and include_positions else 0

        tokens = V * d
        total = tokens + positions + self.type_vocab_size * d + (norm if self.embedding_norm else 0)
        if self.architecture == "encoder":
            total += self.n_layers * encoder_layer + (norm if self.final_norm else 0)
        elif self.architecture == "decoder":
            total += self.n_layers * decoder_layer + (norm if self.final_norm else 0)
        else:
            if not self.share_encoder_decoder_embeddings:
                total += tokens + positions
            total += self.n_layers * encoder_layer + self.decoder_layers * decoder_layer
            total += 2 * norm if self.final_norm else 0
        if self.pooler:
            total += d * d + d
        if self.head in ("lm", "mlm"):
            if not self.tie_embeddings:
                total += V * d
            if self.head == "mlm":
                total += d * d + d + norm + V  # transform, its norm, output bias
        elif self.head in ("sequence-classification", "token-classification"):
            total += d * self.num_labels + self.num_labels
        elif self.head == "question-answering":
            total += d * 2 + 2
        return total

    def flops_per_token(self, seq_len: int | None = None) -> int:
        """Training FLOPs per token: 6·N (forward + backward matmuls) + 12·L·T·d (attention scores).

        N excludes position embeddings (they are looked up, not multiplied). For encoder-decoders L counts
        every attention: encoder self, decoder self and decoder cross.
        """
        T = seq_len or self.max_positions
        n = self.num_parameters(include_positions=False)
        if self.architecture == "encoder-decoder":
            attention_layers = self.n_layers + 2 * self.decoder_layers
        else:
            attention_layers = self.n_layers
        return 6 * n + 12 * attention_layers * T * self.d_model

    # -- (de)serialization ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict, *, where: str = "config") -> ModelConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{where}: unknown model setting(s) {unknown}; valid: {sorted(names)}")
        return cls(**data)

    def replace(self, **changes) -> ModelConfig:
        return dataclasses.replace(self, **changes)


@dataclass
class ELMoConfig:
    vocab_size: int = 33280  # the word tokenizer's vocabulary: what the softmax predicts
    max_characters: int = 20  # UTF-8 bytes per word with its two marks; longer words keep their first 18
    # (ELMo: 50). Convolution cost grows with it, and 97% of WikiText-2's words have at most 10 letters.
    char_embed_dim: int = 16  # ELMo's
    # (width, filters) of each convolution: wide filters see whole morphemes; ELMo's small model uses
    # widths 1..7 with 32..1024 filters (2048 in all), 512 in all here
    filters: list[list[int]] = field(default_factory=lambda: [[1, 32], [2, 32], [3, 64], [4, 128], [5, 256]])
    highway_layers: int = 2  # ELMo: 2; gates let the filters' features pass or be transformed
    projection_dim: int = 128  # width of the token vector and of each LSTM's output (ELMo: 512)
    hidden_size: int = 512  # LSTM cell size, projected down to projection_dim (ELMo: 4096 -> 512)
    num_layers: int = 2  # LSTM layers per direction (ELMo: 2)
    dropout: float = 0.1  # between layers and before the softmax (ELMo: 0.1)
    # adaptive softmax cluster boundaries over the frequency-ordered vocabulary; [] = a full softmax.
    # With ~33k words a full softmax costs several times the LSTMs; 2000 frequent words in the head
    # cover about 80% of WikiText-2's tokens
    cutoffs: list[int] = field(default_factory=lambda: [2000, 10000])
    div_value: float = 4.0  # each tail cluster's projection is this many times narrower (Grave et al.)

    architecture = "elmo"  # what `lmforge.model_source.require_kind` and the pipelines check
    head = "bilm"
    extra: dict = field(default_factory=dict)  # free-form notes, as ModelConfig's
    pad_token_id: int | None = None
    preset: str | None = "elmo"

    def __post_init__(self):
        if self.max_characters < 3:
            raise ConfigError(f"model config: max_characters must be at least 3, got {self.max_characters}")
        if not self.filters or any(len(f) != 2 or min(f) < 1 for f in self.filters):
            raise ConfigError(f"model config: filters must be [[width, count], ...], got {self.filters}")
        if max(w for w, _ in self.filters) > self.max_characters:
            raise ConfigError("model config: a filter is wider than max_characters")
        if self.num_layers < 1:
            raise ConfigError(f"model config: num_layers must be at least 1, got {self.num_layers}")
        if self.cutoffs and (
            sorted(set(self.cutoffs)) != list(self.cutoffs)
            or self.cutoffs[0] < 1
            or self.cutoffs[-1] >= self.vocab_size
        ):
            raise ConfigError(
                f"model config: cutoffs must increase within 1..vocab_size-1 ({self.vocab_size - 1}), "
                f"got {self.cutoffs}"
            )

    # what the shared code (model cards, pipelines, contextual embedder) reads of any model config
    @property
    def n_layers(self) -> int:
        return self.num_layers

    @property
    def d_model(self) -> int:
        return 2 * self.projection_dim  # every layer's vector: [forward; backward]

    @property
    def max_positions(self) -> int:
        return 1 << 20  # recurrent: no position table, no length limit but memory

    def to_dict(self) -> dict:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {"architecture": self.architecture, **fields}

    @classmethod
    def from_dict(cls, data: dict, *, where: str = "config") -> ELMoConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names - {"architecture"})
        if unknown:
            raise ConfigError(f"{where}: unknown ELMo setting(s) {unknown}; valid: {sorted(names)}")
        return cls(**{k: v for k, v in data.items() if k in names})

    def replace(self, **changes) -> ELMoConfig:
        return dataclasses.replace(self, **changes)


def model_config_from_dict(data: dict, *, where: str = "config"):
    """A `ModelConfig` (transformers), or an `ELMoConfig` when `architecture` says "elmo"."""
    if isinstance(data, dict) and data.get("architecture") == "elmo":
        return ELMoConfig.from_dict(data, where=where)
    return ModelConfig.from_dict(data, where=where)


def _gpt2(**changes) -> ModelConfig:
    base = dict(
        architecture="decoder", vocab_size=50257, d_model=768, n_layers=12, n_heads=12, d_ff=3072,
        max_positions=1024, positions="learned", norm="layernorm", norm_eps=1e-5, pre_norm=True,
        activation="gelu_tanh", head="lm", tie_embeddings=True, bos_token_id=50256, eos_token_id=50256,
    )  # fmt: skip
    return ModelConfig(**{**base, **changes})


def _bert(**changes) -> ModelConfig:
    base = dict(
        architecture="encoder", vocab_size=30522, d_model=768, n_layers=12, n_heads=12, d_ff=3072,
        max_positions=512, positions="learned", norm="layernorm", norm_eps=1e-12, pre_norm=False,
        activation="gelu", embedding_norm=True, type_vocab_size=2, head="mlm", tie_embeddings=True,
        pad_token_id=0,
    )  # fmt: skip
    return ModelConfig(**{**base, **changes})


def _transformer(**changes) -> ModelConfig:
    base = dict(
        architecture="encoder-decoder", vocab_size=37000, d_model=512, n_layers=6, n_decoder_layers=6,
        n_heads=8, d_ff=2048, max_positions=512, positions="sinusoidal", norm="layernorm", norm_eps=1e-5,
        pre_norm=False, activation="relu", scale_embeddings=True, head="lm", tie_embeddings=True,
        share_encoder_decoder_embeddings=True, pad_token_id=0, bos_token_id=1, eos_token_id=2,
        decoder_start_token_id=0,
    )  # fmt: skip
    return ModelConfig(**{**base, **changes})


def _llama(**changes) -> ModelConfig:
    base = dict(
        architecture="decoder", vocab_size=32000, d_model=768, n_layers=12, n_heads=12, n_kv_heads=4,
        d_ff=2048, max_positions=2048, positions="rotary", rope_theta=10000.0, norm="rmsnorm", norm_eps=1e-6,
        pre_norm=True, activation="swiglu", bias=False, head="lm", tie_embeddings=False, bos_token_id=1,
        eos_token_id=2,
    )  # fmt: skip
    return ModelConfig(**{**base, **changes})


# name -> builder. The big presets match published models; the tiny ones fit 2 CPU cores.
PRESETS = {
    "gpt2": lambda: _gpt2(),  # GPT-2 small, 124M: Radford et al. 2019
    "bert-base": lambda: _bert(),  # BERT-base with its MLM head, 110M: Devlin et al. 2018
    "transformer-base": lambda: _transformer(),  # "Attention Is All You Need", base model (37k shared BPE)
    "llama-small": lambda: _llama(),  # a 12-layer Llama-style decoder: RoPE, RMSNorm, SwiGLU, GQA 12/4
    # the tiny presets: 256-token context, 4 layers of 256 wide, a few million parameters
    "gpt-tiny": lambda: _gpt2(vocab_size=8192, d_model=256, n_layers=4, n_heads=4, d_ff=1024, max_positions=256,
                              bos_token_id=None, eos_token_id=None),
    "bert-tiny": lambda: _bert(vocab_size=8192, d_model=256, n_layers=4, n_heads=4, d_ff=1024, max_positions=256),
    "transformer-tiny": lambda: _transformer(vocab_size=8192, d_model=256, n_layers=3, n_decoder_layers=3,
                                             n_heads=4, d_ff=1024, max_positions=256),
}  # fmt: skip


def preset(name: str, **changes) -> ModelConfig:
    """The config of a named preset, with optional changes: ``preset("gpt-tiny", vocab_size=512)``."""
    if name not in PRESETS:
        raise ConfigError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
    config = PRESETS[name]()
    config.preset = name
    return config.replace(**changes) if changes else config

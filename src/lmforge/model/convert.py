"""Hugging Face layout ↔ lmforge model directory, for GPT-2, BERT, Marian and Llama checkpoints.

Reads and writes `config.json` + `model.safetensors` directly (never imports `transformers`, never
unpickles). One table of rules per architecture maps tensor names both ways:

- `copy`: same tensor under another name;
- `transpose`: GPT-2 stores its linear layers as Conv1D, (in, out) instead of (out, in);
- `concat`: HF's separate query / key / value projections ↔ lmforge's fused `qkv` (or cross-attention's
  `key_value`).

HF tensors the rules do not use must be known leftovers (tied copies, precomputed buffers) or the conversion
fails naming them, so nothing is silently dropped. Tokenizer files are copied both ways. `from_hf` also
carries what is needed to *use* the model: the chat template (tokenizer_config.json's `chat_template`, or
chat_template.jinja) into generation.json, and a sentence-transformers model's pooling, normalisation and
max_seq_length (modules.json, 1_Pooling/config.json, sentence_bert_config.json) into the config's
`extra["sentence_embedding"]`.

    from_hf("hf-gpt2/", "runs/gpt2")      # lmforge convert --from-hf hf-gpt2 --out runs/gpt2
    to_hf("runs/gpt2", "hf-again/")       # lmforge convert --to-hf runs/gpt2 --out hf-again
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from lmforge.errors import ConfigError, LmforgeError, MissingFileError
from lmforge.io import atomic_write, write_json
from lmforge.model.build import build_model, load_model
from lmforge.model.checkpoint import (
    FORMAT,
    TOKENIZER_FILES,
    CheckpointError,
    check_state_dict,
    copy_tokenizer,
    read_config,
    save_model,
    unique_state_dict,
)
from lmforge.model.config import ModelConfig

HF_ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu", "relu": "relu",
                  "swish": "silu", "silu": "silu"}  # fmt: skip


class ConversionError(LmforgeError, ValueError):
    """A checkpoint lmforge cannot convert (architecture, option or tensor it does not know)."""


@dataclass(frozen=True)
class Rule:
    hf: tuple[str, ...]  # HF tensor name(s)
    ours: str  # lmforge tensor name
    kind: str = "copy"  # copy | transpose | concat


def _rules(config: ModelConfig, family: str, hf_prefix: str) -> list[Rule]:
    rules: list[Rule] = []

    def add(hf, ours, kind="copy"):
        hf = (hf,) if isinstance(hf, str) else tuple(hf)
        rules.append(
            Rule(tuple(hf_prefix + name if not name.startswith("^") else name[1:] for name in hf), ours, kind)
        )

    def weight_and_bias(hf, ours, kind="copy", bias=True):
        names = (hf,) if isinstance(hf, str) else hf
        add([f"{n}.weight" for n in names], f"{ours}.weight", kind)
        if bias:
            add([f"{n}.bias" for n in names], f"{ours}.bias", "concat" if kind == "concat" else "copy")

    if family == "gpt2":
        add("wte.weight", "embeddings.tokens.weight")
        add("wpe.weight", "embeddings.positions.weight")
        for i in range(config.n_layers):
            h, o = f"h.{i}.", f"layers.{i}."
            weight_and_bias(h + "ln_1", o + "attention_norm")
            weight_and_bias(h + "attn.c_attn", o + "attention.qkv", "transpose")
            weight_and_bias(h + "attn.c_proj", o + "attention.out", "transpose")
            weight_and_bias(h + "ln_2", o + "feed_forward_norm")
            weight_and_bias(h + "mlp.c_fc", o + "feed_forward.up", "transpose")
            weight_and_bias(h + "mlp.c_proj", o + "feed_forward.down", "transpose")
        weight_and_bias("ln_f", "final_norm")
    elif family == "llama":
        add("embed_tokens.weight", "embeddings.tokens.weight")
        for i in range(config.n_layers):
            h, o = f"layers.{i}.", f"layers.{i}."
            add(h + "input_layernorm.weight", o + "attention_norm.weight")
            qkv = [h + f"self_attn.{p}_proj.weight" for p in "qkv"]
            add(qkv, o + "attention.qkv.weight", "concat")
            add(h + "self_attn.o_proj.weight", o + "attention.out.weight")
            add(h + "post_attention_layernorm.weight", o + "feed_forward_norm.weight")
            add(h + "mlp.gate_proj.weight", o + "feed_forward.gate.weight")
            add(h + "mlp.up_proj.weight", o + "feed_forward.up.weight")
            add(h + "mlp.down_proj.weight", o + "feed_forward.down.weight")
        add("norm.weight", "final_norm.weight")
        if not config.tie_embeddings:
            add("^lm_head.weight", "head.proj.weight")
    elif family == "bert":
        e = "embeddings."
        add(e + "word_embeddings.weight", "embeddings.tokens.weight")
        add(e + "position_embeddings.weight", "embeddings.positions.weight")
        add(e + "token_type_embeddings.weight", "embeddings.segments.weight")
        weight_and_bias(e + "LayerNorm", "embeddings.norm")
        for i in range(config.n_layers):
            h, o = f"encoder.layer.{i}.", f"layers.{i}."
            weight_and_bias(
                [h + f"attention.self.{p}" for p in ("query", "key", "value")], o + "attention.qkv", "concat"
            )
            weight_and_bias(h + "attention.output.dense", o + "attention.out")
            weight_and_bias(h + "attention.output.LayerNorm", o + "attention_norm")
            weight_and_bias(h + "intermediate.dense", o + "feed_forward.up")
            weight_and_bias(h + "output.dense", o + "feed_forward.down")
            weight_and_bias(h + "output.LayerNorm", o + "feed_forward_norm")
        if config.pooler:
            weight_and_bias("pooler.dense", "pooler.dense")
        if config.head == "mlm":
            weight_and_bias("^cls.predictions.transform.dense", "head.transform")
            weight_and_bias("^cls.predictions.transform.LayerNorm", "head.norm")
            add("^cls.predictions.bias", "head.bias")
        elif config.head in ("sequence-classification", "token-classification"):
            weight_and_bias("^classifier", "head.classifier")
        elif config.head == "question-answering":
            weight_and_bias("^qa_outputs", "head.span")
    elif family == "marian":
        add("shared.weight", "encoder_embeddings.tokens.weight")
        if not config.share_encoder_decoder_embeddings:
            add("decoder.embed_tokens.weight", "decoder_embeddings.tokens.weight")
        for side, layers in (("encoder", config.n_layers), ("decoder", config.decoder_layers)):
            for i in range(layers):
                h, o = f"{side}.layers.{i}.", f"{side}_layers.{i}."
                weight_and_bias([h + f"self_attn.{p}_proj" for p in "qkv"], o + "attention.qkv", "concat")
                weight_and_bias(h + "self_attn.out_proj", o + "attention.out")
                weight_and_bias(h + "self_attn_layer_norm", o + "attention_norm")
                if side == "decoder":
                    weight_and_bias(h + "encoder_attn.q_proj", o + "cross_attention.query")
                    weight_and_bias(
                        [h + f"encoder_attn.{p}_proj" for p in "kv"],
                        o + "cross_attention.key_value",
                        "concat",
                    )
                    weight_and_bias(h + "encoder_attn.out_proj", o + "cross_attention.out")
                    weight_and_bias(h + "encoder_attn_layer_norm", o + "cross_attention_norm")
                weight_and_bias(h + "fc1", o + "feed_forward.up")
                weight_and_bias(h + "fc2", o + "feed_forward.down")
                weight_and_bias(h + "final_layer_norm", o + "feed_forward_norm")
        add("^final_logits_bias", "head.logits_bias")
    return rules


# HF tensors that carry nothing the rules need: tied copies of the embeddings and precomputed buffers.
IGNORED = {
    "gpt2": [r"(.*\.)?h\.\d+\.attn\.(masked_)?bias$", r"^lm_head\.weight$"],
    "bert": [r".*embeddings\.position_ids$", r"^cls\.predictions\.decoder\.(weight|bias)$", r"^cls\.seq_relationship\..*",
             r"^(bert\.)?pooler\..*"],
    "llama": [r".*rotary_emb\.inv_freq$", r"^lm_head\.weight$"],
    "marian": [r"^model\.(encoder|decoder)\.embed_positions\.weight$", r"^model\.(encoder|decoder)\.embed_tokens\.weight$",
               r"^lm_head\.weight$"],
}  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# Configs


def _hf_family(hf: dict, where: str) -> str:
    family = hf.get("model_type")
    if family not in ("gpt2", "bert", "marian", "llama"):
        raise ConversionError(
            f"{where}: model_type {family!r} is not supported; lmforge converts gpt2, bert, marian and llama"
        )
    return family


def config_from_hf(hf: dict, keys: set[str], where: str) -> ModelConfig:
    """The lmforge config of an HF config.json (`keys`: the tensor names, to find which heads are present)."""
    family = _hf_family(hf, where)
    architectures = hf.get("architectures") or []
    activation_name = hf.get("activation_function", hf.get("hidden_act", "gelu"))
    if family != "llama" and activation_name not in HF_ACTIVATIONS:
        raise ConversionError(f"{where}: activation {activation_name!r} is not supported")
    activation = HF_ACTIVATIONS.get(activation_name, "gelu")
    common = dict(
        vocab_size=hf["vocab_size"],
        pad_token_id=hf.get("pad_token_id"),
        bos_token_id=hf.get("bos_token_id"),
        eos_token_id=_single(hf.get("eos_token_id")),
        extra={"converted_from": f"{family} ({', '.join(architectures) or 'HF'})"},
    )
    if family == "gpt2":
        d = hf["n_embd"]
        return ModelConfig(
            architecture="decoder", d_model=d, n_layers=hf["n_layer"], n_heads=hf["n_head"],
            d_ff=hf.get("n_inner") or 4 * d, max_positions=hf["n_positions"], positions="learned",
            norm="layernorm", norm_eps=hf.get("layer_norm_epsilon", 1e-5), pre_norm=True, activation=activation,
            head="lm", tie_embeddings=True, **common,
        )  # fmt: skip
    if family == "llama":
        if hf.get("attention_bias") or hf.get("mlp_bias"):
            raise ConversionError(f"{where}: Llama with attention_bias/mlp_bias is not supported")
        if hf.get("hidden_act", "silu") != "silu":
            raise ConversionError(f"{where}: Llama with hidden_act {hf.get('hidden_act')!r} is not supported")
        rope = hf.get("rope_parameters") or {}
        if (hf.get("rope_scaling") or {}).get("rope_type", "default") != "default" or rope.get(
            "rope_type", "default"
        ) != "default":
            raise ConversionError(f"{where}: Llama rope scaling is not supported (only the default RoPE)")
        d, heads = hf["hidden_size"], hf["num_attention_heads"]
        if hf.get("head_dim") not in (None, d // heads):
            raise ConversionError(
                f"{where}: head_dim {hf['head_dim']} != hidden_size / heads is not supported"
            )
        return ModelConfig(
            architecture="decoder", d_model=d, n_layers=hf["num_hidden_layers"], n_heads=heads,
            n_kv_heads=hf.get("num_key_value_heads") or heads, d_ff=hf["intermediate_size"],
            max_positions=hf.get("max_position_embeddings", 2048), positions="rotary",
            rope_theta=float(rope.get("rope_theta", hf.get("rope_theta", 10000.0))), norm="rmsnorm",
            norm_eps=hf.get("rms_norm_eps", 1e-6), pre_norm=True, activation="swiglu", bias=False, head="lm",
            tie_embeddings=bool(hf.get("tie_word_embeddings", False)), **common,
        )  # fmt: skip
    if family == "bert":
        prefix = "bert." if any(k.startswith("bert.") for k in keys) else ""
        head = None
        if any(k.startswith("cls.predictions.") for k in keys):
            head = "mlm"
        elif "classifier.weight" in keys:
            head = (
                "token-classification"
                if any("TokenClassification" in a for a in architectures)
                else ("sequence-classification")
            )
        elif "qa_outputs.weight" in keys:
            head = "question-answering"
        num_labels = len(hf.get("id2label") or {}) or 2
        return ModelConfig(
            architecture="encoder", d_model=hf["hidden_size"], n_layers=hf["num_hidden_layers"],
            n_heads=hf["num_attention_heads"], d_ff=hf["intermediate_size"],
            max_positions=hf["max_position_embeddings"], positions="learned", norm="layernorm",
            norm_eps=hf.get("layer_norm_eps", 1e-12), pre_norm=False, activation=activation, embedding_norm=True,
            type_vocab_size=hf.get("type_vocab_size", 2), pooler=f"{prefix}pooler.dense.weight" in keys, head=head,
            num_labels=num_labels, tie_embeddings=True,
            dropout=0.0, **common,
        )  # fmt: skip
    # marian
    if hf.get("encoder_ffn_dim") != hf.get("decoder_ffn_dim") or hf.get("encoder_attention_heads") != hf.get(
        "decoder_attention_heads"
    ):
        raise ConversionError(f"{where}: Marian with different encoder/decoder widths is not supported")
    if hf.get("decoder_vocab_size") not in (None, hf["vocab_size"]):
        raise ConversionError(f"{where}: Marian with a separate decoder vocabulary is not supported")
    return ModelConfig(
        architecture="encoder-decoder", d_model=hf["d_model"], n_layers=hf["encoder_layers"],
        n_decoder_layers=hf["decoder_layers"], n_heads=hf["encoder_attention_heads"], d_ff=hf["encoder_ffn_dim"],
        max_positions=hf["max_position_embeddings"], positions="sinusoidal", norm="layernorm", norm_eps=1e-5,
        pre_norm=False, activation=activation, scale_embeddings=bool(hf.get("scale_embedding", False)), head="lm",
        tie_embeddings=bool(hf.get("tie_word_embeddings", True)),
        share_encoder_decoder_embeddings=bool(hf.get("share_encoder_decoder_embeddings", True)),
        final_logits_bias=True, decoder_start_token_id=hf.get("decoder_start_token_id"), **common,
    )  # fmt: skip


def _single(token_id):
    return token_id[0] if isinstance(token_id, list) and token_id else token_id


def hf_family_of(config: ModelConfig) -> str:
    """Which HF architecture an lmforge config can be written as (or a ConversionError saying why none)."""
    c = config

    def need(condition: bool, what: str, family: str) -> None:
        if not condition:
            raise ConversionError(f"this {c.architecture} cannot be written as HF {family}: it needs {what}")

    if c.architecture == "decoder" and c.positions == "rotary":
        need(
            c.norm == "rmsnorm" and c.activation == "swiglu" and not c.bias,
            "RMSNorm, SwiGLU, no biases",
            "llama",
        )
        need(c.head == "lm", "an LM head", "llama")
        return "llama"
    if c.architecture == "decoder":
        need(
            c.positions == "learned" and c.norm == "layernorm" and c.bias,
            "learned positions, LayerNorm",
            "gpt2",
        )
        need(c.activation in ("gelu_tanh", "gelu", "relu", "silu"), "a non-gated activation", "gpt2")
        need(
            c.head == "lm" and c.tie_embeddings and c.pre_norm and not c.scale_embeddings,
            "a tied LM head",
            "gpt2",
        )
        return "gpt2"
    if c.architecture == "encoder":
        need(c.positions == "learned" and c.norm == "layernorm" and not c.pre_norm and c.embedding_norm and c.bias,
             "learned positions and post-norm LayerNorm", "bert")  # fmt: skip
        need(
            c.activation != "swiglu" and c.type_vocab_size > 0 and not c.scale_embeddings,
            "segment embeddings",
            "bert",
        )
        need(c.head != "mlm" or c.tie_embeddings, "a tied MLM head", "bert")
        need(
            c.head != "sequence-classification" or c.classifier_pooling == "cls",
            "a classifier on [CLS] (classifier_pooling 'cls'; HF's BERT has no mean pooling)",
            "bert",
        )
        return "bert"
    need(c.positions == "sinusoidal" and c.norm == "layernorm" and not c.pre_norm and c.bias,
         "sinusoidal positions and post-norm LayerNorm", "marian")  # fmt: skip
    need(c.activation != "swiglu" and c.head == "lm" and c.tie_embeddings, "a tied LM head", "marian")
    return "marian"


_HF_ACTIVATION_NAMES = {"gelu_tanh": "gelu_new", "gelu": "gelu", "relu": "relu", "silu": "swish"}


def config_to_hf(config: ModelConfig) -> dict:
    c = config
    family = hf_family_of(c)
    ids = {"pad_token_id": c.pad_token_id, "bos_token_id": c.bos_token_id, "eos_token_id": c.eos_token_id}
    if family == "gpt2":
        return dict(
            model_type="gpt2", architectures=["GPT2LMHeadModel"], vocab_size=c.vocab_size, n_positions=c.max_positions,
            n_embd=c.d_model, n_layer=c.n_layers, n_head=c.n_heads, n_inner=c.d_ff,
            activation_function=_HF_ACTIVATION_NAMES[c.activation], layer_norm_epsilon=c.norm_eps,
            resid_pdrop=c.dropout, embd_pdrop=c.dropout, attn_pdrop=c.attention_dropout, tie_word_embeddings=True, **ids,
        )  # fmt: skip
    if family == "llama":
        return dict(
            model_type="llama", architectures=["LlamaForCausalLM"], vocab_size=c.vocab_size, hidden_size=c.d_model,
            intermediate_size=c.d_ff, num_hidden_layers=c.n_layers, num_attention_heads=c.n_heads,
            num_key_value_heads=c.kv_heads, head_dim=c.head_dim, max_position_embeddings=c.max_positions,
            rms_norm_eps=c.norm_eps, rope_theta=c.rope_theta,
            rope_parameters={"rope_theta": c.rope_theta, "rope_type": "default"}, hidden_act="silu",
            attention_bias=False, mlp_bias=False, attention_dropout=c.attention_dropout,
            tie_word_embeddings=c.tie_embeddings, **ids,
        )  # fmt: skip
    if family == "bert":
        architecture = {None: "BertModel", "mlm": "BertForMaskedLM", "sequence-classification": "BertForSequenceClassification",
                        "token-classification": "BertForTokenClassification",
                        "question-answering": "BertForQuestionAnswering"}[c.head]  # fmt: skip
        out = dict(
            model_type="bert", architectures=[architecture], vocab_size=c.vocab_size, hidden_size=c.d_model,
            num_hidden_layers=c.n_layers, num_attention_heads=c.n_heads, intermediate_size=c.d_ff,
            hidden_act=_HF_ACTIVATION_NAMES[c.activation].replace("swish", "silu"),
            max_position_embeddings=c.max_positions, type_vocab_size=c.type_vocab_size, layer_norm_eps=c.norm_eps,
            hidden_dropout_prob=c.dropout, attention_probs_dropout_prob=c.attention_dropout, tie_word_embeddings=True,
            **ids,
        )  # fmt: skip
        if c.head in ("sequence-classification", "token-classification"):
            out["id2label"] = {str(i): f"LABEL_{i}" for i in range(c.num_labels)}
            out["label2id"] = {f"LABEL_{i}": i for i in range(c.num_labels)}
        return out
    return dict(
        model_type="marian", architectures=["MarianMTModel"], vocab_size=c.vocab_size, decoder_vocab_size=c.vocab_size,
        d_model=c.d_model, encoder_layers=c.n_layers, decoder_layers=c.decoder_layers,
        encoder_attention_heads=c.n_heads, decoder_attention_heads=c.n_heads, encoder_ffn_dim=c.d_ff,
        decoder_ffn_dim=c.d_ff, activation_function=_HF_ACTIVATION_NAMES[c.activation],
        max_position_embeddings=c.max_positions, scale_embedding=c.scale_embeddings, dropout=c.dropout,
        attention_dropout=c.attention_dropout, activation_dropout=0.0, is_encoder_decoder=True,
        share_encoder_decoder_embeddings=c.share_encoder_decoder_embeddings, tie_word_embeddings=True,
        decoder_start_token_id=c.decoder_start_token_id, forced_eos_token_id=c.eos_token_id, **ids,
    )  # fmt: skip


def _hf_prefix(family: str, keys: set[str]) -> str:
    if family == "gpt2":
        return "transformer." if any(k.startswith("transformer.") for k in keys) else ""
    if family == "bert":
        return "bert." if any(k.startswith("bert.") for k in keys) else ""
    return "model." if any(k.startswith("model.") for k in keys) else ""


# ---------------------------------------------------------------------------------------------------------
# Directions


def read_hf_config(source: str | os.PathLike) -> ModelConfig:
    """The lmforge config an HF checkpoint directory converts to, read without loading its weights (the
    tensor names come from the safetensors headers): what a command checks before it converts."""
    from safetensors import SafetensorError, safe_open

    source = Path(source)
    hf = _read_hf_json(source)
    keys: set[str] = set()
    for file in _hf_weight_files(source):
        try:
            with safe_open(str(file), framework="pt") as handle:
                keys.update(handle.keys())
        except SafetensorError as exc:
            raise CheckpointError(f"{file}: not a readable safetensors file ({exc})") from None
    return config_from_hf(hf, keys, str(source / "config.json"))


def _read_hf_json(source: Path) -> dict:
    if not source.is_dir():
        raise MissingFileError(f"Hugging Face model directory not found: {source}")
    config_path = source / "config.json"
    if not config_path.is_file():
        raise MissingFileError(
            f"{config_path} not found: an HF model directory holds config.json + safetensors"
        )
    try:
        hf = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f"{config_path}:{exc.lineno}" if isinstance(exc, json.JSONDecodeError) else str(config_path)
        raise ConversionError(f"{where}: not valid JSON ({getattr(exc, 'msg', exc)})") from None
    if isinstance(hf, dict) and hf.get("format") == FORMAT:
        raise ConversionError(
            f"{source}: already an lmforge model directory; `lmforge convert --to-hf` writes it in HF layout"
        )
    _hf_family(hf, str(config_path))  # an unsupported architecture fails before any weight is read
    return hf


def _hf_weight_files(source: Path) -> list[Path]:
    files = sorted(source.glob("*.safetensors"))
    if not files:
        hint = " (only PyTorch .bin weights? lmforge never unpickles; re-save them as safetensors)"
        raise MissingFileError(
            f"{source}: no .safetensors weights{hint if list(source.glob('*.bin')) else ''}"
        )
    return files


def _read_hf(source: Path) -> tuple[dict, dict[str, Tensor]]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    hf = _read_hf_json(source)
    state: dict[str, Tensor] = {}
    for file in _hf_weight_files(source):
        try:
            state.update(load_file(str(file)))
        except SafetensorError as exc:
            raise CheckpointError(f"{file}: not a readable safetensors file ({exc})") from None
    return hf, state


def from_hf(source: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Convert an HF checkpoint directory (GPT-2, BERT, Marian, Llama) into an lmforge model directory."""

    source, out = Path(source), Path(out)
    hf, hf_state = _read_hf(source)
    where = str(source / "config.json")
    family = _hf_family(hf, where)
    config = config_from_hf(hf, set(hf_state), where)
    embedding = sentence_embedding_settings(source)
    if embedding:
        config.extra["sentence_embedding"] = embedding
    prefix = _hf_prefix(family, set(hf_state))
    model = build_model(config)
    expected = unique_state_dict(model)

    state: dict[str, Tensor] = {}
    used: set[str] = set()
    missing_hf: list[str] = []
    for rule in _rules(config, family, prefix):
        if any(name not in hf_state for name in rule.hf):
            missing_hf += [name for name in rule.hf if name not in hf_state]
            continue
        tensors = [hf_state[name] for name in rule.hf]
        used.update(rule.hf)
        if rule.kind == "transpose":
            tensor = tensors[0].t()
        elif rule.kind == "concat":
            tensor = torch.cat(tensors, dim=0)
        else:
            tensor = tensors[0]
        if rule.ours == "head.logits_bias":
            tensor = tensor.reshape(-1)
        state[rule.ours] = tensor.float().contiguous()
    if missing_hf:
        raise CheckpointError(f"{source}: tensors missing from the HF checkpoint: {missing_hf[:20]}")
    leftovers = sorted(
        name for name in set(hf_state) - used if not any(re.match(p, name) for p in IGNORED[family])
    )
    if leftovers:
        raise ConversionError(f"{source}: HF tensors lmforge does not know how to map: {leftovers[:20]}")
    check_state_dict(expected, state, f"{source} (converted)")
    model.load_state_dict(state, strict=False)
    save_model(model, out, card=f"Converted from the Hugging Face checkpoint in `{source}`.")
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            copy_tokenizer(source / name, out) if name == "tokenizer.json" else _copy(
                source / name, out / name
            )
    template = chat_template(source)
    if template is not None:  # generation.json holds only the template: every decoding setting stays default
        write_json(out / "generation.json", {"chat_template": template}, newline=True)
    return out


def chat_template(source: Path) -> str | None:
    """The Jinja2 chat template of an HF checkpoint: chat_template.jinja, else tokenizer_config.json's
    `chat_template` (a string, or a list of named templates of which "default" is taken)."""
    if (source / "chat_template.jinja").is_file():
        return (source / "chat_template.jinja").read_text(encoding="utf-8")
    path = source / "tokenizer_config.json"
    if not path.is_file():
        return None
    try:
        template = json.loads(path.read_text(encoding="utf-8")).get("chat_template")
    except json.JSONDecodeError as exc:
        raise ConversionError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if isinstance(template, list):
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default")
    return template if isinstance(template, str) else None


def sentence_embedding_settings(source: Path) -> dict:
    """A sentence-transformers checkpoint's pooling ("mean", "cls", "max", ...), whether it normalises, and
    its max_seq_length; {} for other checkpoints."""
    modules_file = source / "modules.json"
    if not modules_file.is_file():
        return {}
    modules = json.loads(modules_file.read_text(encoding="utf-8"))
    types = {m.get("type", "").rsplit(".", 1)[-1]: m.get("path", "") for m in modules}
    settings: dict = {"pooling": "mean", "normalize": "Normalize" in types}
    pooling_file = source / types.get("Pooling", "1_Pooling") / "config.json"
    if "Pooling" in types and pooling_file.is_file():
        pooling = json.loads(pooling_file.read_text(encoding="utf-8"))
        modes = [m for m in ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens")
                 if pooling.get(f"pooling_mode_{m}")]  # fmt: skip
        if pooling.get("pooling_mode"):  # newer files name the mode directly
            modes = [pooling["pooling_mode"]]
        names = {
            "cls_token": "cls",
            "mean_tokens": "mean",
            "max_tokens": "max",
            "mean_sqrt_len_tokens": "mean_sqrt_len",
        }
        settings["pooling"] = "+".join(names.get(m, m) for m in modes) or "mean"
    st_config = source / "sentence_bert_config.json"
    if st_config.is_file():
        length = json.loads(st_config.read_text(encoding="utf-8")).get("max_seq_length")
        if length:
            settings["max_length"] = int(length)
    return settings


def to_hf(source: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write an lmforge model directory as an HF checkpoint (config.json + model.safetensors)."""
    from safetensors.torch import save_file

    source, out = Path(source), Path(out)
    config = read_config(source)
    hf_config = config_to_hf(config)  # raises before anything is written if there is no HF equivalent
    family = hf_config["model_type"]
    model = load_model(source)
    state = unique_state_dict(model)
    prefix = {"gpt2": "transformer.", "llama": "model.", "marian": "model."}.get(family, "")
    if family == "bert" and config.head is not None:
        prefix = "bert."
    hf_state: dict[str, Tensor] = {}
    for rule in _rules(config, family, prefix):
        if rule.ours == "head.logits_bias" and rule.ours not in state:  # trained here, without Marian's
            hf_state[rule.hf[0]] = torch.zeros(1, config.vocab_size)  # fixed bias: HF's is then zeros
            continue
        tensor = state[rule.ours]
        if rule.kind == "transpose":
            hf_state[rule.hf[0]] = tensor.t().contiguous()
        elif rule.kind == "concat":
            sizes = _concat_sizes(config, rule)
            for name, part in zip(rule.hf, tensor.split(sizes, dim=0), strict=True):
                hf_state[name] = part.contiguous()
        elif rule.ours == "head.logits_bias":
            hf_state[rule.hf[0]] = tensor.reshape(1, -1).contiguous()
        else:
            hf_state[rule.hf[0]] = tensor.contiguous()
    hf_state = {name: tensor.detach().cpu() for name, tensor in hf_state.items()}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "model.safetensors", lambda p: save_file(hf_state, p, metadata={"format": "pt"}))
    atomic_write(out / "config.json", lambda p: Path(p).write_text(json.dumps(hf_config, indent=2) + "\n"))
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            _copy(source / name, out / name)
    return out


def _concat_sizes(config: ModelConfig, rule: Rule) -> list[int]:
    kv = config.kv_heads * config.head_dim
    if len(rule.hf) == 3:  # query, key, value
        return [config.d_model, kv, kv]
    return [kv, kv]  # key, value (cross-attention)


def _copy(source: Path, target: Path) -> None:
    if source.resolve() != target.resolve():
        atomic_write(target, lambda p: Path(p).write_bytes(source.read_bytes()))


def convert(from_hf_dir: str | None, to_hf_dir: str | None, out: str) -> Path:
    """The `lmforge convert` verb's function: exactly one of the two sources."""
    if (from_hf_dir is None) == (to_hf_dir is None):
        raise ConfigError("give exactly one of --from-hf SRC or --to-hf SRC")
    return from_hf(from_hf_dir, out) if from_hf_dir is not None else to_hf(to_hf_dir, out)

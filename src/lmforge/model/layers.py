"""The building blocks every architecture shares, in the order the course introduces them.

- Positions: `SinusoidalPositions` ("Attention Is All You Need", sin in the first half of the vector and cos
  in the second, as Marian lays them out), learned positions (a plain `nn.Embedding`, GPT-2 / BERT) and
  `RotaryPositions` (RoPE, Su et al. 2021, the rotate-half form of Llama).
- Norms: `nn.LayerNorm` and `RMSNorm` (Zhang & Sennrich 2019), built by `build_norm`.
- `FeedForward`: two linear layers around ReLU, GELU (exact or tanh), SiLU, or the gated SwiGLU (Shazeer 2020).
- `MultiHeadAttention`: query / key / value projections, then softmax(QKᵀ/√d)·V per head. One class serves
  bidirectional self-attention (with a padding mask), causal self-attention and cross-attention over the
  encoder's output, with grouped-query attention (fewer key/value heads). The fast path is one call to
  `F.scaled_dot_product_attention`; the explicit path computes the same thing step by step and returns the
  attention weights.
- `TransformerLayer`: attention (+ cross-attention) + feed-forward, each inside a residual connection with a
  norm before (pre-norm, GPT-2) or after (post-norm, Vaswani, BERT) the sublayer.
- `KVCache`: keys and values kept between decoding steps (see its docstring for the protocol);
  `SlotKVCache`: the same for sequences that join and leave a running batch (continuous batching).
- `attention_bias`: turns a padding mask (and causality) into the additive mask attention uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.export import register_dataclass

# ---------------------------------------------------------------------------------------------------------
# Positions


class SinusoidalPositions(nn.Module):
    """Fixed sinusoids: position p, frequency i → sin(p / 10000^(2i/d)) and cos(...) (nothing to learn).

    The table is a non-persistent buffer: it is recomputed, never saved. Computed in float64 so that it
    equals the tables of other implementations to the last bit of float32.

        >>> SinusoidalPositions(16, 4)(torch.tensor([[0, 1]]))[0, 1]  # sin(1), sin(0.01), cos(1), cos(0.01)
        tensor([0.8415, 0.0100, 0.5403, 0.9999])
    """

    def __init__(self, max_positions: int, dim: int) -> None:
        super().__init__()
        position = torch.arange(max_positions, dtype=torch.float64)[:, None]
        frequency = 1.0 / 10000.0 ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)
        angles = position * frequency  # (P, ceil(d/2))
        table = torch.cat([angles.sin(), angles.cos()[:, : dim // 2]], dim=-1)  # (P, d)
        self.register_buffer("table", table.float(), persistent=False)

    def forward(self, position_ids: Tensor) -> Tensor:  # (B, T) -> (B, T, d)
        return self.table[position_ids]


class RotaryPositions(nn.Module):
    """Rotary position embedding: rotate each (x_i, x_{i+d/2}) pair of q and k by angle p·θ_i.

    The dot product of a rotated query at p and a rotated key at p' depends only on p - p', so attention sees
    relative positions. Returns cos and sin of shape (B, T, head_dim) for `apply_rotary`.
    """

    def __init__(self, head_dim: int, theta: float = 10000.0) -> None:
        super().__init__()
        inverse_frequency = 1.0 / theta ** (
            torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim
        )
        self.register_buffer("inverse_frequency", inverse_frequency, persistent=False)

    def forward(self, position_ids: Tensor) -> tuple[Tensor, Tensor]:
        angles = position_ids[..., None].float() * self.inverse_frequency  # (B, T, hd/2)
        angles = torch.cat([angles, angles], dim=-1)  # (B, T, hd)
        return angles.cos(), angles.sin()


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """x (B, H, T, hd) rotated by the angles of its positions (cos, sin: (B, T, hd))."""
    half = x.shape[-1] // 2
    rotated_half = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    cos, sin = cos[:, None].to(x.dtype), sin[:, None].to(x.dtype)
    return x * cos + rotated_half * sin


# ---------------------------------------------------------------------------------------------------------
# Norms


class RMSNorm(nn.Module):
    """x / sqrt(mean(x²) + eps) · weight — LayerNorm without centring or bias (Llama)."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return F.rms_norm(x.float(), (x.shape[-1],), eps=self.eps).to(x.dtype) * self.weight


def build_norm(kind: str, dim: int, eps: float, bias: bool = True) -> nn.Module:
    if kind == "rmsnorm":
        return RMSNorm(dim, eps)
    return nn.LayerNorm(dim, eps=eps, bias=bias)


# ---------------------------------------------------------------------------------------------------------
# Feed-forward


class FeedForward(nn.Module):
    """The position-wise network: up-project to d_ff, non-linearity, down-project (and dropout).

    SwiGLU gates the up-projection: down(silu(gate(x)) * up(x)), which is why Llama uses d_ff ≈ 8/3·d.
    """

    def __init__(self, d_model: int, d_ff: int, activation: str, bias: bool = True, dropout: float = 0.0):
        super().__init__()
        self.activation = activation
        self.up = nn.Linear(d_model, d_ff, bias=bias)
        self.gate = nn.Linear(d_model, d_ff, bias=bias) if activation == "swiglu" else None
        self.down = nn.Linear(d_ff, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:  # (B, T, d) -> (B, T, d)
        hidden = self.up(x)
        if self.activation == "swiglu":
            hidden = F.silu(self.gate(x)) * hidden
        elif self.activation == "gelu_tanh":
            hidden = F.gelu(hidden, approximate="tanh")
        elif self.activation == "gelu":
            hidden = F.gelu(hidden)
        elif self.activation == "silu":
            hidden = F.silu(hidden)
        else:
            hidden = F.relu(hidden)
        return self.dropout(self.down(hidden))


# ---------------------------------------------------------------------------------------------------------
# The KV cache


class LayerCache:
    """One layer's cached keys and values, (B, kv_heads, T, head_dim) each.

    Self-attention keys/values live in buffers with room for more positions than they hold (`capacity`
    positions when the cache was made for a known length; otherwise the room doubles whenever it runs
    out), so a decoding step writes one new position in place instead of copying the whole cache into a
    new tensor (`torch.cat`), which at batch 16 cost as much as the model's matrix multiplies.
    `key` / `value` are views of the filled part.
    """

    def __init__(self, capacity: int = 0) -> None:
        self.capacity = capacity  # positions to reserve at the first `append` (0: what it brings)
        self.length = 0  # positions filled
        self.key_buffer: Tensor | None = None  # (B, kv_heads, room, head_dim)
        self.value_buffer: Tensor | None = None
        self.cross_key: Tensor | None = None  # cross-attention: computed once from the encoder output
        self.cross_value: Tensor | None = None

    @property
    def key(self) -> Tensor | None:
        return None if self.key_buffer is None else self.key_buffer[:, :, : self.length]

    @property
    def value(self) -> Tensor | None:
        return None if self.value_buffer is None else self.value_buffer[:, :, : self.length]

    def append(self, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        """Add the new positions' keys/values (B, kv_heads, T, head_dim); returns all of them so far."""
        end = self.length + key.shape[2]
        room = 0 if self.key_buffer is None else self.key_buffer.shape[2]
        if end > room or self.key_buffer.dtype != key.dtype:
            room = max(end, self.capacity, 2 * room)
            self.key_buffer = self._moved(self.key_buffer, key, room)
            self.value_buffer = self._moved(self.value_buffer, value, room)
        self.key_buffer[:, :, self.length : end] = key
        self.value_buffer[:, :, self.length : end] = value
        self.length = end
        return self.key, self.value

    def _moved(self, old: Tensor | None, like: Tensor, room: int) -> Tensor:
        B, heads, _, head_dim = like.shape
        buffer = like.new_empty(B, heads, room, head_dim)
        if old is not None and self.length:
            buffer[:, :, : self.length] = old[:, :, : self.length]
        return buffer

    def reorder(self, rows: Tensor) -> None:
        """Row i becomes the old row ``rows[i]`` (beam search keeps, drops or duplicates rows)."""
        if self.key_buffer is not None:
            if rows.shape[0] == self.key_buffer.shape[0]:  # the usual beam step: gather, write back in place
                for buffer in (self.key_buffer, self.value_buffer):
                    buffer[:, :, : self.length] = buffer[:, :, : self.length].index_select(0, rows)
            else:
                self.key_buffer = self.key_buffer.index_select(0, rows)
                self.value_buffer = self.value_buffer.index_select(0, rows)
        if self.cross_key is not None:
            self.cross_key = self.cross_key.index_select(0, rows)
            self.cross_value = self.cross_value.index_select(0, rows)


@dataclass
class KVCache:
    """Keys and values of the tokens already seen, so that each decoding step only processes new tokens.

    The protocol (used by `lmforge.generate`):

    1. ``cache = model.new_cache(capacity=prompt_length + max_new_tokens)`` (an empty cache, one per batch
       of sequences; the capacity is optional and only saves regrowing the buffers).
    2. Prefill: ``out = model(prompt_ids, attention_mask=mask, cache=cache)`` — the cache now holds the
       prompt's keys and values (`cache.length` = prompt length).
    3. Each step: ``out = model(next_ids[:, None], attention_mask=mask, cache=cache)`` where ``mask`` covers
       all ``cache.length + 1`` tokens (1 = real token, 0 = padding). Positions default to
       ``cumsum(mask) - 1``, so left-padded prompts get positions 0, 1, ... from their first real token; pass
       ``position_ids`` to override.
    4. Beam search: ``cache.reorder(beam_indices)`` keeps (or duplicates) the rows of the surviving beams,
       in the self-attention and the cross-attention keys/values alike, so ``reorder`` may also expand a
       batch of B sources to B × beams rows after the prefill. Pass the encoder output and source mask with
       the same rows (``memory.index_select(0, beam_indices)``) if you pass them again.

    5. Speculative decoding: several new tokens in one call (their mask covers them all), then
       ``cache.crop(length)`` drops the positions of the drafts the model did not accept.

    For encoder-decoders, the first decoder call with a cache computes the cross-attention keys/values from
    the encoder output and stores them; later calls reuse them (pass the same ``encoder_hidden_states``).
    """

    layers: list[LayerCache] = field(default_factory=list)

    @classmethod
    def empty(cls, n_layers: int, capacity: int = 0) -> KVCache:
        """A cache for `n_layers` layers; `capacity`: the positions it will hold, when known (prompt + new)."""
        return cls([LayerCache(capacity) for _ in range(n_layers)])

    @property
    def length(self) -> int:
        """Tokens already in the cache (the same for every layer)."""
        return self.layers[0].length if self.layers else 0

    def reorder(self, batch_indices: Tensor) -> None:
        """Keep/duplicate rows of the batch: row i becomes the old row ``batch_indices[i]``."""
        for layer in self.layers:
            layer.reorder(batch_indices)

    def crop(self, length: int) -> None:
        """Forget every position from `length` on (speculative decoding's rollback after rejected drafts).

        Nothing is copied: the filled length shrinks and the next `append` overwrites the rest, so the
        cache is then what a fresh forward over the kept tokens would have made. Cross-attention keys and
        values (the source's) stay.
        """
        if length < 0:
            raise ValueError(f"cannot crop a cache to {length} positions")
        for layer in self.layers:
            layer.length = min(layer.length, length)


class SlotKVCache:
    """Keys and values of `slots` independent sequences, each with room for `capacity` positions, reserved
    once — the cache of continuous batching (`lmforge.engine`), where sequences join and leave a running
    batch between two decoding steps.

    Where `KVCache` holds one batch whose rows start together, each slot here has its own length: a forward
    pass runs over a contiguous range of slots, each row writing its new keys/values at its own next
    positions and attending to its own positions only (per-slot position ids and a mask over slot
    positions). Nothing is copied per step; `move` relocates one sequence when the running slots are
    compacted, `release` empties a slot.

    The protocol:

    1. ``cache = model.new_slot_cache(slots=16, capacity=1024)`` — every buffer allocated here.
    2. ``view = cache.batch(start, stop, new_tokens)``: reserves, in slots ``start .. stop - 1``, the next
       ``new_tokens[i]`` positions of row i. Then ``model(ids, cache=view)`` with ids (stop - start, T),
       T = max(new_tokens), rows shorter than T padded at the right (their padding is written but never
       attended to: the slot's length only counts the real tokens). Positions and the causal mask come from
       the view; pass no attention_mask.
    3. Encoder-decoders: the first ``batch`` of a sequence passes ``source_lengths``; its decoder call then
       computes the cross-attention keys/values from the encoder output and stores them in the slots;
       later calls pass ``encoder_hidden_states=None`` and ``attention_mask=view.source_mask``.

        >>> cache = SlotKVCache(n_layers=1, slots=2, capacity=8, kv_heads=1, head_dim=2)
        >>> view = cache.batch(0, 2, new_tokens=[3, 1])  # a 3-token and a 1-token prompt, right-padded
        >>> view.position_ids
        tensor([[0, 1, 2],
                [0, 1, 2]])
        >>> cache.lengths
        [3, 1]
        >>> cache.batch(0, 2, new_tokens=[1, 1]).position_ids  # then one token each, at its own position
        tensor([[3],
                [1]])
    """

    def __init__(
        self,
        n_layers: int,
        slots: int,
        capacity: int,
        kv_heads: int,
        head_dim: int,
        *,
        source_capacity: int = 0,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        self.slots, self.capacity, self.source_capacity = slots, capacity, source_capacity
        self.lengths = [0] * slots  # positions filled in each slot
        self.source_lengths = [0] * slots  # encoder-decoders: source tokens whose keys/values a slot holds

        def buffer(positions: int) -> Tensor:
            return torch.zeros(slots, kv_heads, positions, head_dim, dtype=dtype, device=device)

        self.keys = [buffer(capacity) for _ in range(n_layers)]  # (slots, kv_heads, capacity, head_dim)
        self.values = [buffer(capacity) for _ in range(n_layers)]
        self.cross_keys = [buffer(source_capacity) for _ in range(n_layers)] if source_capacity else []
        self.cross_values = [buffer(source_capacity) for _ in range(n_layers)] if source_capacity else []
        self.device = self.keys[0].device if n_layers else torch.device("cpu")

    def batch(
        self, start: int, stop: int, new_tokens: list[int], *, source_lengths: list[int] | None = None
    ) -> SlotBatch:
        """A view of slots start..stop-1 for one forward pass that adds `new_tokens[i]` tokens to row i."""
        if not 0 <= start < stop <= self.slots or len(new_tokens) != stop - start:
            raise ValueError(
                f"slots {start}..{stop - 1} with {len(new_tokens)} rows: not in 0..{self.slots - 1}"
            )
        old = self.lengths[start:stop]
        width = max(old) + max(new_tokens)
        if width > self.capacity:
            raise ValueError(f"a slot would hold {width} positions; the cache has room for {self.capacity}")
        if source_lengths is not None:
            if max(source_lengths) > self.source_capacity:
                raise ValueError(
                    f"a source of {max(source_lengths)} tokens; the cache has room for {self.source_capacity}"
                )
            self.source_lengths[start:stop] = source_lengths
        view = SlotBatch(self, start, stop, old, max(new_tokens), fresh_source=source_lengths is not None)
        for row, count in enumerate(new_tokens):
            self.lengths[start + row] += count
        return view

    def release(self, slot: int) -> None:
        """The slot is free again (its old keys/values are simply overwritten later)."""
        self.lengths[slot] = self.source_lengths[slot] = 0

    def move(self, source: int, target: int) -> None:
        """Move the sequence of slot `source` into slot `target` (compaction: one copy, not one per step)."""
        length, source_length = self.lengths[source], self.source_lengths[source]
        for buffers, used in ((self.keys, length), (self.values, length), (self.cross_keys, source_length),
                              (self.cross_values, source_length)):  # fmt: skip
            for buffer in buffers:
                buffer[target, :, :used] = buffer[source, :, :used]
        self.lengths[target], self.source_lengths[target] = length, source_length
        self.release(source)

    def source_mask(self, start: int, stop: int) -> Tensor:
        """(stop - start, longest source) 1/0: which source positions of each slot are real."""
        lengths = torch.tensor(self.source_lengths[start:stop], device=self.device)
        return (torch.arange(int(lengths.max()), device=self.device)[None] < lengths[:, None]).long()


class SlotBatch:
    """One forward pass over a range of slots of a `SlotKVCache`; pass it as the model's `cache`.

    Holds the new tokens' position ids (B, T) — each row continues its own slot — and the self-attention
    mask: query t of row r (at position old_r + t) sees the keys at positions ≤ old_r + t of its own slot.
    When every row starts at the same length the mask is left to SDPA (None, or its causal flag), the same
    fast path as a plain `KVCache`.
    """

    def __init__(self, cache: SlotKVCache, start: int, stop: int, old: list[int], T: int, fresh_source: bool):
        self.cache, self.start, self.stop = cache, start, stop
        self.fresh_source = fresh_source  # the decoder call computes the cross keys/values and stores them
        self.width = max(old) + T  # key positions the attention reads
        device = cache.device
        old_lengths = torch.tensor(old, device=device)[:, None]  # (B, 1)
        self.position_ids = old_lengths + torch.arange(T, device=device)  # (B, T)
        self.uniform = all(length == old[0] for length in old)
        self.bias, self.is_causal = None, False
        if self.uniform and old[0] == 0 and T > 1:
            self.is_causal = True
        elif not (self.uniform and T == 1):
            allowed = torch.arange(self.width, device=device) <= self.position_ids[:, :, None]  # (B, T, W)
            bias = torch.zeros(allowed.shape, device=device)
            self.bias = bias.masked_fill_(~allowed, torch.finfo(bias.dtype).min)[:, None]  # (B, 1, T, W)
        self.layers = [_SlotLayer(self, index) for index in range(len(cache.keys))]

    @property
    def source_mask(self) -> Tensor:
        return self.cache.source_mask(self.start, self.stop)


class _SlotLayer:
    """A `SlotBatch`'s view of one layer: what `MultiHeadAttention` reads and writes (as with `LayerCache`)."""

    def __init__(self, batch: SlotBatch, index: int) -> None:
        self.batch, self.index = batch, index

    def append(self, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        """Write the new keys/values (B, kv_heads, T, head_dim) at each row's positions; return the window."""
        batch, cache = self.batch, self.batch.cache
        rows = slice(batch.start, batch.stop)
        key_buffer, value_buffer = cache.keys[self.index], cache.values[self.index]
        if batch.uniform:  # every row writes the same positions: a plain slice assignment
            first = int(batch.position_ids[0, 0])
            key_buffer[rows, :, first : first + key.shape[2]] = key
            value_buffer[rows, :, first : first + key.shape[2]] = value
        else:  # (B, 1) slots × (B, T) positions pick (B, T, kv_heads, head_dim)
            slots = torch.arange(batch.start, batch.stop, device=cache.device)[:, None]
            key_buffer[slots, :, batch.position_ids] = key.transpose(1, 2)
            value_buffer[slots, :, batch.position_ids] = value.transpose(1, 2)
        return key_buffer[rows, :, : batch.width], value_buffer[rows, :, : batch.width]

    @property
    def cross_key(self) -> Tensor | None:
        return self._cross(self.batch.cache.cross_keys)

    @property
    def cross_value(self) -> Tensor | None:
        return self._cross(self.batch.cache.cross_values)

    @cross_key.setter
    def cross_key(self, key: Tensor) -> None:
        self.batch.cache.cross_keys[self.index][self.batch.start : self.batch.stop, :, : key.shape[2]] = key

    @cross_value.setter
    def cross_value(self, value: Tensor) -> None:
        buffer = self.batch.cache.cross_values[self.index]
        buffer[self.batch.start : self.batch.stop, :, : value.shape[2]] = value

    def _cross(self, buffers: list[Tensor]) -> Tensor | None:
        batch = self.batch
        if batch.fresh_source or not buffers:
            return None
        longest = max(batch.cache.source_lengths[batch.start : batch.stop])
        return buffers[self.index][batch.start : batch.stop, :, :longest]


def causal_attention_inputs(
    input_ids: Tensor,
    attention_mask: Tensor | None,
    position_ids: Tensor | None,
    cache: KVCache | SlotBatch | None,
) -> tuple[Tensor, Tensor | None, bool]:
    """The new tokens' position ids and the causal self-attention mask (bias, is_causal) of a decoder call.

    With a `KVCache` (or none), positions follow the padding mask and the mask covers past + new tokens;
    with a `SlotBatch` both come from the slots' own lengths.
    """
    if isinstance(cache, SlotBatch):
        if attention_mask is not None:
            raise ValueError("a slot cache masks by its slots' lengths: pass no decoder attention_mask")
        return (cache.position_ids if position_ids is None else position_ids), cache.bias, cache.is_causal
    past = cache.length if cache is not None else 0
    if position_ids is None:
        position_ids = default_position_ids(attention_mask, input_ids, past)
    T = input_ids.shape[1]
    bias, is_causal = attention_bias(
        attention_mask, T, causal=True, past_length=past, device=input_ids.device
    )
    return position_ids, bias, is_causal


# ---------------------------------------------------------------------------------------------------------
# Attention


def attention_bias(
    attention_mask: Tensor | None,
    query_length: int,
    *,
    causal: bool,
    past_length: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | None = None,
) -> tuple[Tensor | None, bool]:
    """The additive attention mask for `F.scaled_dot_product_attention`, and whether to ask it for causality.

    attention_mask: (B, past + T) with 1 for real tokens and 0 for padding, or None (no padding).
    Returns (bias, is_causal): bias is (B, 1, T, past + T) — 0 where a query may look, the most negative
    float where it may not — or None when nothing is masked (then `is_causal` tells SDPA to mask the future
    itself, which is its fastest path). Each query may always see itself, so that a padding query never has
    an empty row (which would make NaNs that then leak through the padding keys of later layers).

        >>> bias, _ = attention_bias(torch.tensor([[0, 1, 1]]), 3, causal=True)
        >>> (bias[0, 0] == 0).int()  # rows: queries, columns: keys; the padding key 0 is never seen
        tensor([[1, 0, 0],
                [0, 1, 0],
                [0, 1, 1]], dtype=torch.int32)
    """
    key_length = past_length + query_length
    no_padding = attention_mask is None or bool(attention_mask.all())
    if no_padding and (not causal or query_length == 1):
        return None, False
    if no_padding and past_length == 0:
        return None, True
    device = attention_mask.device if attention_mask is not None else device
    query_positions = torch.arange(past_length, key_length, device=device)[:, None]  # (T, 1)
    key_positions = torch.arange(key_length, device=device)[None, :]  # (1, past + T)
    allowed = torch.ones(query_length, key_length, dtype=torch.bool, device=device)
    if causal:
        allowed = key_positions <= query_positions
    allowed = allowed[None, None]  # (1, 1, T, past + T)
    if attention_mask is not None:
        if attention_mask.shape[-1] != key_length:
            raise ValueError(
                f"attention_mask covers {attention_mask.shape[-1]} tokens but the cache holds {past_length} "
                f"and the input {query_length}: pass a mask for all {key_length}"
            )
        allowed = allowed & attention_mask[:, None, None, :].bool()
    allowed = allowed | (key_positions == query_positions)  # a query always sees itself
    bias = torch.zeros(allowed.shape, dtype=dtype, device=device)
    return bias.masked_fill_(~allowed, torch.finfo(dtype).min), False


def padding_bias(attention_mask: Tensor | None, dtype: torch.dtype = torch.float32) -> Tensor | None:
    """(B, S) 1/0 mask of the keys → (B, 1, 1, S) additive bias for bidirectional or cross-attention."""
    if attention_mask is None or bool(attention_mask.all()):
        return None
    bias = torch.zeros(attention_mask.shape, dtype=dtype, device=attention_mask.device)
    bias = bias.masked_fill_(attention_mask == 0, torch.finfo(dtype).min)
    return bias[:, None, None, :]


def _explicit_is_faster(q: Tensor, k: Tensor) -> bool:
    """bf16 on the CPU: PyTorch's fused (flash) kernel is 2x (256 tokens) to 9x (13 tokens) slower, forward +
    backward, than the explicit matmul-softmax-matmul (torch 2.13, AVX512-BF16); up to 512 x 512 scores
    per head the explicit path's memory is small."""
    return q.device.type == "cpu" and q.dtype == torch.bfloat16 and q.shape[-2] * k.shape[-2] <= 512 * 512


class MultiHeadAttention(nn.Module):
    """Multi-head attention with grouped-query heads; self-attention, or cross-attention over `memory`.

    Self-attention projects q, k, v in one matrix multiply (`qkv`); cross-attention projects q from the
    decoder (`query`) and k, v from the encoder output (`key_value`). With n_kv_heads < n_heads, each group of
    n_heads / n_kv_heads query heads shares one key/value head (GQA, Ainslie et al. 2023).
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        n_kv_heads: int | None = None,
        *,
        bias: bool = True,
        dropout: float = 0.0,
        cross: bool = False,
    ) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.n_kv_heads = n_kv_heads or n_heads
        self.head_dim = d_model // n_heads
        self.cross = cross
        self.dropout = dropout
        kv_width = 2 * self.n_kv_heads * self.head_dim
        if cross:
            self.query = nn.Linear(d_model, d_model, bias=bias)
            self.key_value = nn.Linear(d_model, kv_width, bias=bias)
        else:
            self.qkv = nn.Linear(d_model, d_model + kv_width, bias=bias)
        self.out = nn.Linear(d_model, d_model, bias=bias)

    def forward(
        self,
        x: Tensor,  # (B, T, d)
        *,
        bias: Tensor | None = None,  # additive mask broadcastable to (B, H, T, S)
        is_causal: bool = False,
        rotary: tuple[Tensor, Tensor] | None = None,  # (cos, sin) of the new tokens' positions
        memory: Tensor | None = None,  # (B, S, d) encoder output, for cross-attention
        cache: LayerCache | None = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        B, T, _ = x.shape
        H, KV, hd = self.n_heads, self.n_kv_heads, self.head_dim
        if self.cross:
            q = self.query(x).view(B, T, H, hd).transpose(1, 2)  # (B, H, T, hd)
            if cache is not None and cache.cross_key is not None:
                k, v = cache.cross_key, cache.cross_value
            else:
                k, v = self._split_kv(self.key_value(memory))
                if cache is not None:
                    cache.cross_key, cache.cross_value = k, v
        else:
            # one split (not split + unbind): its backward is a single concatenation of the gradients
            q, k, v = self.qkv(x).split([H * hd, KV * hd, KV * hd], dim=-1)
            q = q.view(B, T, H, hd).transpose(1, 2)  # (B, H, T, hd)
            k = k.view(B, T, KV, hd).transpose(1, 2)  # (B, KV, T, hd)
            v = v.view(B, T, KV, hd).transpose(1, 2)
            if rotary is not None:
                q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
            if cache is not None:
                k, v = cache.append(k, v)  # every position so far, written in place
        if KV != H:  # grouped-query: each key/value head serves H / KV query heads
            k = k.repeat_interleave(H // KV, dim=1)
            v = v.repeat_interleave(H // KV, dim=1)
        if bias is not None and bias.dtype != q.dtype:  # autocast: clamp so fp16 gets its own min, not -inf
            bias = bias.clamp(min=torch.finfo(q.dtype).min).to(q.dtype)
        dropout = self.dropout if self.training else 0.0

        weights = None
        if need_weights or _explicit_is_faster(q, k):  # every step of softmax(QKᵀ/√d)·V
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(hd)  # (B, H, T, S)
            if bias is not None:
                scores = scores + bias
            if is_causal:
                scores = scores.masked_fill(
                    torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1), -math.inf
                )
            probabilities = scores.softmax(dim=-1)
            weights = probabilities if need_weights else None
            attended = F.dropout(probabilities, dropout, self.training) @ v  # (B, H, T, hd)
        else:
            attended = F.scaled_dot_product_attention(
                q, k, v, attn_mask=bias, dropout_p=dropout, is_causal=is_causal
            )
        attended = attended.transpose(1, 2).reshape(B, T, H * hd)  # heads side by side again
        return self.out(attended), weights

    def _split_kv(self, kv: Tensor) -> tuple[Tensor, Tensor]:  # (B, S, 2·KV·hd) -> 2 × (B, KV, S, hd)
        B, S, _ = kv.shape
        k, v = kv.view(B, S, 2, self.n_kv_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return k, v


# ---------------------------------------------------------------------------------------------------------
# One layer


class TransformerLayer(nn.Module):
    """Self-attention (+ cross-attention for decoders of encoder-decoders) + feed-forward, with residuals.

    pre-norm:  x = x + sublayer(norm(x))        (GPT-2, Llama; the stack ends with a final norm)
    post-norm: x = norm(x + sublayer(x))        (the original Transformer, BERT, Marian)
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        *,
        n_kv_heads: int | None = None,
        activation: str = "gelu",
        norm: str = "layernorm",
        norm_eps: float = 1e-5,
        pre_norm: bool = True,
        bias: bool = True,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        cross_attention: bool = False,
    ) -> None:
        super().__init__()
        self.pre_norm = pre_norm
        self.attention = MultiHeadAttention(
            d_model, n_heads, n_kv_heads, bias=bias, dropout=attention_dropout
        )
        self.attention_norm = build_norm(norm, d_model, norm_eps, bias)
        self.cross_attention = None
        if cross_attention:
            self.cross_attention = MultiHeadAttention(
                d_model, n_heads, n_kv_heads, bias=bias, dropout=attention_dropout, cross=True
            )
            self.cross_attention_norm = build_norm(norm, d_model, norm_eps, bias)
        self.feed_forward = FeedForward(d_model, d_ff, activation, bias, dropout)
        self.feed_forward_norm = build_norm(norm, d_model, norm_eps, bias)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: Tensor,  # (B, T, d)
        *,
        bias: Tensor | None = None,
        is_causal: bool = False,
        rotary: tuple[Tensor, Tensor] | None = None,
        memory: Tensor | None = None,
        memory_bias: Tensor | None = None,
        cache: LayerCache | None = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        def attend(h: Tensor) -> Tensor:
            nonlocal weights
            out, weights = self.attention(
                h, bias=bias, is_causal=is_causal, rotary=rotary, cache=cache, need_weights=need_weights
            )
            return self.dropout(out)

        weights = None
        x = self._residual(x, attend, self.attention_norm)
        if self.cross_attention is not None:

            def cross_attend(h: Tensor) -> Tensor:
                return self.dropout(self.cross_attention(h, bias=memory_bias, memory=memory, cache=cache)[0])

            x = self._residual(x, cross_attend, self.cross_attention_norm)
        x = self._residual(x, self.feed_forward, self.feed_forward_norm)
        return x, weights

    def _residual(self, x: Tensor, sublayer, norm: nn.Module) -> Tensor:
        if self.pre_norm:
            return x + sublayer(norm(x))
        return norm(x + sublayer(x))


class Embeddings(nn.Module):
    """Token embeddings (+ learned or sinusoidal positions, + segments), scaled, normalized, dropped out.

    Rotary positions add nothing here: they rotate queries and keys inside attention, so `forward` returns
    their (cos, sin) beside the embeddings. `tokens` may be passed in to share one table between the
    encoder and the decoder of an encoder-decoder.
    """

    def __init__(self, config, tokens: nn.Embedding | None = None) -> None:
        super().__init__()
        d = config.d_model
        self.tokens = tokens if tokens is not None else nn.Embedding(config.vocab_size, d)
        self.scale = math.sqrt(d) if config.scale_embeddings else 1.0
        self.positions: nn.Module | None = None
        self.rotary: RotaryPositions | None = None
        if config.positions == "learned":
            self.positions = nn.Embedding(config.max_positions, d)
        elif config.positions == "sinusoidal":
            self.positions = SinusoidalPositions(config.max_positions, d)
        else:
            self.rotary = RotaryPositions(config.head_dim, config.rope_theta)
        self.segments = nn.Embedding(config.type_vocab_size, d) if config.type_vocab_size else None
        self.norm = (
            build_norm(config.norm, d, config.norm_eps, config.bias) if config.embedding_norm else None
        )
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self, input_ids: Tensor, position_ids: Tensor, token_type_ids: Tensor | None = None
    ) -> tuple[Tensor, tuple[Tensor, Tensor] | None]:
        x = self.tokens(input_ids)  # (B, T, d)
        if self.scale != 1.0:
            x = x * self.scale
        if self.positions is not None:
            x = x + self.positions(position_ids)
        if self.segments is not None:
            if token_type_ids is None:
                token_type_ids = torch.zeros_like(input_ids)
            x = x + self.segments(token_type_ids)
        if self.norm is not None:
            x = self.norm(x)
        rotary = self.rotary(position_ids) if self.rotary is not None else None
        return self.dropout(x), rotary


def default_position_ids(attention_mask: Tensor | None, input_ids: Tensor, past_length: int = 0) -> Tensor:
    """Positions of the new tokens: counted from each row's first real token when a mask is given.

    With right padding (or none) this is 0, 1, 2, ...; with left padding the first real token gets
    position 0 too, so a left-padded prompt sees the same positions as the unpadded one.

        >>> default_position_ids(torch.tensor([[0, 0, 1, 1]]), torch.zeros(1, 4, dtype=torch.long))
        tensor([[0, 0, 0, 1]])
    """
    T = input_ids.shape[1]
    if attention_mask is None:
        return torch.arange(past_length, past_length + T, device=input_ids.device)[None].expand(
            input_ids.shape[0], T
        )
    positions = (attention_mask.long().cumsum(-1) - 1).clamp_(min=0)
    return positions[:, -T:]


@dataclass
class ModelOutput:
    """What every model returns. Fields a model does not produce stay None."""

    hidden_states: Tensor  # (B, T, d): the last layer (after the final norm of pre-norm models)
    logits: Tensor | None = None  # the head's output: (B, T, V) for LM/MLM, (B, labels) for classification
    pooled: Tensor | None = None  # (B, d): the pooler's output (BERT)
    attentions: list[Tensor] | None = None  # per layer (B, H, T, S) when asked with return_attentions=True
    cache: KVCache | None = None  # the updated cache when one was passed
    encoder_hidden_states: Tensor | None = None  # encoder-decoders: (B, S, d), reusable across calls


# A pytree, so that wrappers which walk module outputs (FSDP2's gradient hooks, torch.export) see the tensors
# inside it; with an opaque class FSDP2 silently skips the gradient reduction.
register_dataclass(ModelOutput, serialized_type_name="lmforge.model.layers.ModelOutput")


def layer_from_config(config, *, cross_attention: bool = False) -> TransformerLayer:
    """A `TransformerLayer` with the sizes and choices of a `ModelConfig`."""
    return TransformerLayer(
        config.d_model,
        config.n_heads,
        config.d_ff,
        n_kv_heads=config.n_kv_heads,
        activation=config.activation,
        norm=config.norm,
        norm_eps=config.norm_eps,
        pre_norm=config.pre_norm,
        bias=config.bias,
        dropout=config.dropout,
        attention_dropout=config.attention_dropout,
        cross_attention=cross_attention,
    )


def init_weights(module: nn.Module, n_layers: int, std: float = 0.02) -> None:
    """GPT-2 initialisation: normal(0, 0.02) weights, zero biases, and the projections that write into the
    residual stream scaled by 1/sqrt(2·n_layers) so that its variance does not grow with depth."""
    for name, parameter in module.named_parameters():
        if parameter.dim() < 2:
            if name.endswith("bias"):
                nn.init.zeros_(parameter)
            continue
        scale = 1 / math.sqrt(2 * n_layers) if name.endswith(("attention.out.weight", "down.weight")) else 1.0
        nn.init.normal_(parameter, mean=0.0, std=std * scale)

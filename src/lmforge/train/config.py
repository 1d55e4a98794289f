"""`TrainConfig`: every setting of the training loop, with why each default is what it is.

Kept apart from `loop.py` so that reading or checking a config (the CLI, YAML presets) does not import
PyTorch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lmforge.config import Count, CountOrZero


@dataclass
class TrainConfig:
    max_steps: Count = 1000  # optimizer steps; the schedule's decay ends here
    max_minutes: float | None = None  # wall-clock budget: stop (evaluate, save) after this many minutes of
    # training, counted over every session of the run (a resumed run gets what is left; raise it to extend)
    schedule_follows_time: bool = False  # with max_minutes: at every log point, move the schedule's end (and
    # max_steps) to the step the recent pace reaches when the budget runs out, so the decay ends with the
    # budget even when the machine speeds up or slows down mid-run (the steps then depend on the machine's
    # speed: a resumed run is not bit-exact)
    stop_after: Count | None = (
        None  # end this session at this step (saved; resumable); the schedule keeps max_steps
    )
    batch_size: Count = 16  # sequences per micro-batch per process
    grad_accum: Count = 1  # micro-batches per step: global batch = batch_size x grad_accum x processes
    lr: float = 1e-3  # peak AdamW rate; 1e-3 suits models under ~10M parameters (nanoGPT's baby GPT)
    min_lr_ratio: float = 0.1  # cosine floor as a fraction of the peak
    warmup_steps: CountOrZero = (
        100  # linear warm-up: Adam's second-moment estimate is noisy for the first steps
    )
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    weight_decay: float = 0.1  # on matrices only (see optim.parameter_groups); GPT-2/3 used 0.1
    beta1: float = 0.9
    beta2: float = 0.95  # below Adam's 0.999: reacts faster to loss spikes in LM training (GPT-3)
    grad_clip: float = 1.0  # max global gradient norm; 0 turns clipping off
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: bf16 on CUDA that has it, else fp32
    compile: bool = False  # torch.compile the model: faster steps after a slow first one (minutes on CPU)
    device: str = "auto"  # auto: this rank's CUDA GPU when there is one, else the CPU
    parallel: Literal["ddp", "fsdp"] = "ddp"  # under torchrun: replicate (ddp) or shard (fsdp, FSDP2)
    eval_every: CountOrZero = 200  # optimizer steps between evaluations; 0 = only at the end
    eval_batches: CountOrZero = 20  # validation batches per evaluation; 0 = the whole validation split
    eval_batch_size: Count | None = None  # None = batch_size (no gradients, so larger fits too)
    save_every: CountOrZero = 0  # steps between checkpoints; 0 = at every evaluation
    keep_last: CountOrZero = 2  # checkpoints kept besides the best one
    resume: bool = True  # continue from out_dir/checkpoints when a checkpoint is there
    seed: CountOrZero = 1337  # for dropout and data order; the model's initialisation is the caller's
    log_every: Count = 10  # steps between loss records (reading the loss syncs the GPU)
    progress: bool = True  # tqdm progress bar
    tensorboard: bool = True  # event files under out_dir/tb when tensorboard is installed
    peak_tflops: float | None = None  # hardware peak for MFU; None = known GPUs only

    def __post_init__(self):
        for name in ("max_steps", "batch_size", "grad_accum", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.warmup_steps < 0 or self.eval_every < 0 or self.save_every < 0:
            raise ValueError("warmup_steps, eval_every and save_every must be >= 0")

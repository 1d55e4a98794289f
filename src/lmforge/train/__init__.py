"""The one training loop and its parts.

loop         `train(model, objective, config, out_dir)`: the loop every objective runs through
optim        AdamW with decay / no-decay groups; warmup + cosine / linear schedules
state        atomic checkpoints (safetensors + JSON), keep last K and best, exact resume
distributed  DDP / FSDP2 under torchrun (gloo on CPU, nccl on CUDA)
logging      progress bar (loss, tokens/s, MFU, ETA), metrics.jsonl, TensorBoard, loss.png
precision    `precision: auto`: bf16 only where measured faster (CUDA capability; a cached CPU matmul probe)
budget       before the loop: the step timed, the precision settled on it, max_steps fitted to max_minutes
"""

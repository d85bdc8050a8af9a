"""Which device a run uses (trainer.device, the torchrun local rank, or the Hydra job number), and
the torch settings that make it deterministic or fast."""

import os

import torch


def pick_device(setting: str, local_rank: int = 0, job_number: int | None = None) -> torch.device:
    """`auto` picks CUDA when present: GPU local_rank under torchrun, else GPU (job number mod
    GPU count) so parallel Hydra jobs (joblib launcher) spread over the GPUs of one machine."""
    if setting == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        index = local_rank if job_number is None else (job_number + local_rank)
        return torch.device("cuda", index % torch.cuda.device_count())
    device = torch.device(setting)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"trainer.device={setting} but CUDA is not available; use cpu or auto")
    return device


def configure_torch(deterministic: bool) -> None:
    """trainer.deterministic: deterministic algorithms (and cuBLAS workspace); else cuDNN's
    autotuner."""
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.benchmark = True
